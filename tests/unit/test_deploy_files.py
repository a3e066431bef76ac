"""The deployment files, checked without Docker or systemd: they parse, lint, and name
only settings that exist and things the deploy guide (docs/deploy.md) tells the user about."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from setuptools import find_packages

from bot.config import load_settings, settings_path_exists
from bot.config_view import NON_SETTINGS_VARIABLES
from tests.conftest import ROOT

DEPLOY_GUIDE = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
CLI_VARIABLES = NON_SETTINGS_VARIABLES


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical = re.sub(r"\\\n", " ", text)
    result = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def env_variables(text: str) -> set[str]:
    return set(re.findall(r"^#?\s*(HEDGEBOT_[A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(hadolint), str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2
    assert all(image.startswith("python:3.11-slim") for image in froms)
    # The runtime stage copies what the build stage installed from this checkout.
    assert any(k == "COPY" and rest.startswith("--from=build") for k, rest in instructions)
    assert any(k == "RUN" and 'pip install ".[postgres]"' in rest for k, rest in instructions)
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    last_user = users[-1].split(":")[0]
    assert last_user not in {"root", "0"}
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/healthz" in healthchecks[0]
    assert ("ENTRYPOINT", '["hedgebot"]') in instructions
    assert ("CMD", '["run", "--migrate"]') in instructions


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax: ``*`` and ``?`` within a path element, ``**`` across them."""
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves ``path`` out: the last pattern matching the path or
    one of its parent directories decides, ``!`` puts it back in (Docker's rules)."""
    elements = path.split("/")
    prefixes = ["/".join(elements[:n]) for n in range(1, len(elements) + 1)]
    ignored = False
    for pattern in patterns:
        regex = _pattern_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def test_docker_ignored_follows_dockers_rules() -> None:
    patterns = ["*", "!bot", "**/__pycache__", "data/*.db"]
    assert docker_ignored("tests/unit/x.py", patterns)
    assert not docker_ignored("bot/cli/x.py", patterns)
    assert docker_ignored("bot/cli/__pycache__/x.pyc", patterns)
    assert not docker_ignored("bot", ["bot/*"])
    assert docker_ignored("data/a.db", ["data/*.db"])
    assert not docker_ignored("data/sub/a.db", ["data/*.db"])


def readme_docker_ignored() -> list[str]:
    """The paths the deploy guide says Docker leaves out of the build context."""
    claims = re.findall(r"((?:`[^`]+`,?\s*(?:and\s+)?)+)are git- and docker-ignored", DEPLOY_GUIDE)
    assert claims, "the deploy guide no longer says what .dockerignore leaves out"
    return [name for claim in claims for name in re.findall(r"`([^`]+)`", claim)]


def test_dockerignore_leaves_out_what_the_guide_says_and_keeps_what_the_image_copies() -> None:
    patterns = dockerignore_patterns()
    named = readme_docker_ignored()
    assert {".env", "secrets/", "deploy/docker/hedgebot.env"} <= set(named)
    left_out = [f"{name}api_key" if name.endswith("/") else name for name in named]
    left_out += [
        ".git/HEAD",
        ".venv/bin/python",
        "hedgebot.db",
        "hedgebot.db-wal",
        "hedgebot.db.lock",
        "data/hedgebot.db",
        "tests/support/emulators/binance.py",
        "bench/bench_cycle.py",
        "docs/architecture.md",
        "examples/paper.toml",
        "bot/__pycache__/config.cpython-311.pyc",
        "hedgebot.egg-info/PKG-INFO",
    ]
    assert [p for p in left_out if not docker_ignored(p, patterns)] == []
    kept = ["pyproject.toml", "README.md", "bot/config.py", "bot/py.typed", "migrations/env.py"]
    versions = ROOT / "migrations" / "versions"
    kept += [f"migrations/versions/{p.name}" for p in versions.glob("*.py")]
    assert [p for p in kept if docker_ignored(p, patterns)] == []


# What the image needs at run time: the package's sources (built into the venv) and the
# migrations. Tests, benchmarks, docs, examples and the emulator stay out.
IMAGE_SOURCES = {"pyproject.toml", "README.md", "bot", "migrations", "alembic.ini"}


def test_the_image_copies_only_what_runs() -> None:
    copied: list[str] = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY" and not rest.startswith("--from="):
            *sources, _destination = rest.split()
            copied += [source.removeprefix("./").rstrip("/") for source in sources]
    assert copied, "the build stage copies nothing from the checkout"
    assert set(copied) <= IMAGE_SOURCES, sorted(set(copied) - IMAGE_SOURCES)
    for path in ("tests/conftest.py", "bench/machine.py", "docs/architecture.md"):
        assert docker_ignored(path, dockerignore_patterns())  # not even in the build context


def test_the_package_holds_bot_only_without_tests_or_the_emulator() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    # The same discovery the build backend runs for the wheel and the sdist.
    packages = find_packages(where=str(ROOT), include=find["include"])
    assert "bot" in packages
    assert all(name == "bot" or name.startswith("bot.") for name in packages), packages
    assert not [name for name in packages if "testing" in name or "emulator" in name]
    assert not (ROOT / "bot" / "testing").exists()


def test_nothing_in_the_bot_package_imports_the_tests() -> None:
    offenders: list[str] = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name == "tests" or name.startswith("tests.")
            ]
    assert offenders == []


def test_compose_runs_the_bot_after_a_healthy_postgres_with_migrations() -> None:
    services = compose()["services"]
    assert set(services) == {"bot", "postgres"}
    postgres, bot = services["postgres"], services["bot"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]  # a named volume, not a bind mount
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert bot["command"] == ["run", "--migrate"]
    assert bot["environment"]["HEDGEBOT_DATABASE_URL"].startswith("postgresql+asyncpg://hedgebot:")
    assert "@postgres:5432/" in bot["environment"]["HEDGEBOT_DATABASE_URL"]


def test_compose_config_comes_from_an_env_file_a_mounted_toml_and_docker_secrets() -> None:
    document = compose()
    bot = document["services"]["bot"]
    env_file = bot["env_file"][0]
    assert (ROOT / f"{env_file}.example").is_file()
    mount = next(v for v in bot["volumes"] if v.endswith(":ro"))
    source, target, _ = mount.split(":")
    assert target == bot["environment"]["HEDGEBOT_CONFIG"]
    toml = (ROOT / source).resolve()
    assert toml.is_file()
    # The mounted TOML is a valid config (with the database from the environment).
    settings = load_settings(toml)
    assert settings.pairs
    secrets = document["secrets"]
    assert set(bot["secrets"]) == set(secrets) == {"hedgebot_api_key", "hedgebot_api_secret"}
    text = toml.read_text(encoding="utf-8")
    for name in bot["secrets"]:
        assert f"/run/secrets/{name}" in text  # the TOML shows where the keys are read


def test_compose_publishes_the_http_port_on_loopback_only() -> None:
    bot = compose()["services"]["bot"]
    port = bot["environment"]["HEDGEBOT_HTTP__PORT"]
    assert bot["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_every_hedgebot_variable_in_the_deploy_files_is_a_setting() -> None:
    names: set[str] = set(compose()["services"]["bot"]["environment"])
    for path in (
        ROOT / "deploy" / "hedgebot.env.example",
        ROOT / "deploy" / "docker" / "hedgebot.env.example",
    ):
        names |= env_variables(path.read_text(encoding="utf-8"))
    assert "HEDGEBOT_HTTP__PORT" in names
    unknown = sorted(n for n in names - CLI_VARIABLES if not settings_path_exists(n))
    assert unknown == []


def test_settings_path_check_rejects_a_misspelt_variable() -> None:
    assert settings_path_exists("HEDGEBOT_HTTP__PORT")
    assert settings_path_exists("HEDGEBOT_ACCOUNTS__MAIN__API_KEY")
    assert not settings_path_exists("HEDGEBOT_HTTP__PROT")
    assert not settings_path_exists("HEDGEBOT_ACCOUNTS__MAIN__API_KYE")
    assert not settings_path_exists("HEDGEBOT_DATABASE")


def test_deploy_guide_names_the_compose_services_files_and_commands() -> None:
    document = compose()
    for name in document["services"]:
        assert f"`{name}`" in DEPLOY_GUIDE
    for name in document["secrets"]:
        assert name in DEPLOY_GUIDE
    for text in (
        "docker compose up -d",
        "deploy/docker/hedgebot.env",
        "deploy/docker/hedgebot.toml",
        "POSTGRES_PASSWORD",
        "api_key_file",
    ):
        assert text in DEPLOY_GUIDE


def systemd_unit() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "hedgebot.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def test_systemd_unit_is_notify_with_watchdog_and_hardened() -> None:
    unit = systemd_unit()
    expected = {
        "Type": ["notify"],
        "Restart": ["on-failure"],
        "NoNewPrivileges": ["yes"],
        "ProtectSystem": ["strict"],
        "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"],
        "User": ["hedgebot"],
        "StateDirectory": ["hedgebot"],
        "ReadWritePaths": ["/var/lib/hedgebot"],
        "EnvironmentFile": ["/etc/hedgebot/hedgebot.env"],
    }
    for key, value in expected.items():
        assert unit.get(key) == value, key
    assert int(unit["WatchdogSec"][0]) > 0
    assert "AF_UNIX" in unit["RestrictAddressFamilies"][0]  # the notify socket


def test_deploy_guide_covers_the_service_steps() -> None:
    for text in (
        "useradd",
        "chmod 600",
        "systemctl enable --now hedgebot",
        "journalctl -u hedgebot",
        "deploy/hedgebot.env.example",
    ):
        assert text in DEPLOY_GUIDE


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # The unit as installed, with ExecStart pointing at this checkout's hedgebot.
    hedgebot = Path(sys.executable).parent / "hedgebot"
    text = (ROOT / "deploy" / "hedgebot.service").read_text(encoding="utf-8")
    unit = tmp_path / "hedgebot.service"
    unit.write_text(text.replace("/opt/hedgebot/bin/hedgebot", str(hedgebot)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


def makefile_default(name: str) -> str:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    found = re.search(rf"^{name} \?= (\S+)$", text, flags=re.MULTILINE)
    assert found, name
    return found[1]


def test_the_unit_runs_what_make_install_installs_where_the_guide_puts_it() -> None:
    unit = systemd_unit()
    prefix = makefile_default("PREFIX")
    assert f"make install PREFIX={prefix}" in DEPLOY_GUIDE
    assert unit["ExecStart"] == [f"{prefix}/bin/hedgebot run --migrate"]
    # The installed package finds its migrations itself: no path into a checkout.
    assert not [v for v in unit.get("Environment", []) if "MIGRATIONS" in v]
    recipe = DEPLOY_GUIDE.split("## As a systemd service", 1)[1].split("\n## ", 1)[0]
    assert "make setup" not in recipe  # the dev install is not the service's


def test_the_database_lives_in_the_units_writable_state_directory() -> None:
    unit = systemd_unit()
    state = f"/var/lib/{unit['StateDirectory'][0]}"
    assert unit["WorkingDirectory"] == [state]
    assert unit["ReadWritePaths"] == [state]
    env = (ROOT / "deploy" / "hedgebot.env.example").read_text(encoding="utf-8")
    url = re.search(r"^HEDGEBOT_DATABASE_URL=(\S+)$", env, flags=re.MULTILINE)
    assert url
    assert url[1] == f"sqlite+aiosqlite:///{state}/hedgebot.db"
    config = re.search(r"^HEDGEBOT_CONFIG=(\S+)$", env, flags=re.MULTILINE)
    assert config
    assert Path(config[1]).parent == Path(unit["EnvironmentFile"][0]).parent  # /etc/hedgebot
