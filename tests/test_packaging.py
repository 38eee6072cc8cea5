"""The package lists of pyproject.toml, environment.yml and the workflow's conda env agree."""

import re
import tomllib
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]

# Conda-forge names of packages whose PyPI name differs.
CONDA_NAMES = {"torch": "pytorch"}


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].strip().lower()


def pyproject_packages() -> dict[str, str]:
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    packages = {}
    for requirement in project["dependencies"]:
        name = requirement_name(requirement)
        packages[CONDA_NAMES.get(name, name)] = requirement[len(name):].strip()
    return packages


def conda_packages(path: Path) -> dict[str, str]:
    environment = yaml.safe_load(path.read_text())
    packages = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, str):
            name = requirement_name(entry)
            packages[name] = entry[len(name):].strip()
    return packages


def test_environment_matches_pyproject():
    conda = conda_packages(REPOSITORY / "environment.yml")
    assert {name: bound for name, bound in conda.items() if name not in ("python", "pip")} == pyproject_packages()


def test_workflow_env_matches_environment():
    assert conda_packages(REPOSITORY / "workflow/envs/faultreg.yaml") == conda_packages(REPOSITORY / "environment.yml")


def test_constraints_pin_cpu_torch_and_every_dependency():
    pins = {}
    for line in (REPOSITORY / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = version
    assert pins["torch"] == "2.13.0"
    for name in pyproject_packages():
        pypi_name = {value: key for key, value in CONDA_NAMES.items()}.get(name, name)
        assert pypi_name in pins, f"{pypi_name} is not pinned in constraints.txt"


def test_schema_link_points_at_packaged_schema():
    linked = REPOSITORY / "workflow/schemas/config.schema.yaml"
    packaged = REPOSITORY / "src/faultreg/schemas/config.schema.yaml"
    assert linked.resolve() == packaged.resolve()
