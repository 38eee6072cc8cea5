"""faultreg: stuck-at faults in ReRAM crossbars, training regularizers and hardware cost."""

__version__ = "0.1.0"
