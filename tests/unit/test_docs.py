"""The README and docs/ stay true to the code: every setting, command, option and audit kind
is documented, nothing documented is gone, links resolve, and the site builds strictly.

(The command examples run in tests/e2e/test_docs_examples.py.)
"""

from __future__ import annotations

import ast
import re
import shutil
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import markdown
import pytest
import typer.main
from mkdocs.commands.build import build
from mkdocs.config import load_config
from mkdocs.exceptions import Abort
from pydantic import BaseModel

from bot.cli import app
from bot.config import Settings, settings_path_exists
from bot.config_view import NON_SETTINGS_VARIABLES
from bot.domain.margin_transfers import TransferState
from bot.domain.models import OrderStatus
from tests.conftest import ROOT
from tests.support.doc_examples import examples

DOCS = ROOT / "docs"
README = ROOT / "README.md"
# architecture.md keeps its own shape (its code-map table is edited with the code).
OWN_PAGES = sorted(p for p in DOCS.glob("*.md") if p.name != "architecture.md")
MAX_CELL = 200
MAX_README_LINES = 250


def _sections(text: str) -> Iterator[tuple[str, str]]:
    """(heading, body) of each ## to #### section, fenced code skipped for headings."""
    heading, body, fenced = "", [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{2,4} (.+)$", line)
        if match:
            yield heading, "\n".join(body)
            heading, body = match.group(1).strip(), []
        else:
            body.append(line)
    yield heading, "\n".join(body)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def _table_rows(body: str) -> list[list[str]]:
    rows = [_cells(line) for line in body.splitlines() if line.startswith("|")]
    return [r for r in rows[2:] if not all(set(c) <= set("-: ") for c in r)]


# --- configuration.md: every key of every table of bot/config.py ---------------------


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        inner = _model_in(field.annotation)
        if inner is not None:
            found |= _models(inner)
    return found


def _model_at(table: str) -> type[BaseModel]:
    """The model of a TOML table as the page names it: `[[pairs]]`, `[accounts.NAME]`."""
    model: type[BaseModel] = Settings
    for part in table.strip("[]").split("."):
        if part.isupper():  # NAME, SYMBOL, COIN: a key of a dict of tables
            continue
        inner = _model_in(model.model_fields[part].annotation)
        assert inner is not None, f"{table}: {part} is not a table"
        model = inner
    return model


def _documented_tables() -> dict[type[BaseModel], set[str]]:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    tables: dict[type[BaseModel], set[str]] = {}
    for heading, body in _sections(text):
        if heading == "Top level":
            model = Settings
        else:
            named = re.match(r"`(\[[^`]+\])`", heading)
            if named is None:
                continue
            model = _model_at(named.group(1))
        keys = {k for row in _table_rows(body) for k in re.findall(r"`([a-z_0-9]+)`", row[0])}
        assert model not in tables, f"{model.__name__} has two sections"
        tables[model] = keys
    return tables


def test_every_setting_is_documented_and_every_documented_key_exists() -> None:
    tables = _documented_tables()
    for model in _models(Settings):
        assert model in tables, f"configuration.md has no section for {model.__name__}"
        fields = model.model_fields
        plain = {n for n, f in fields.items() if _model_in(f.annotation) is None}
        missing = plain - tables[model]
        assert not missing, f"{model.__name__}: not in configuration.md: {sorted(missing)}"
        unknown = tables[model] - set(fields)
        assert not unknown, f"{model.__name__}: configuration.md lists {sorted(unknown)}"


def test_the_table_lookup_finds_nested_tables() -> None:
    from bot.config import MaintenanceTierConfig, PaperMarketConfig, TrendConfig

    assert _model_at("[pairs.trend]") is TrendConfig
    assert _model_at("[paper.markets.SYMBOL]") is PaperMarketConfig
    assert _model_at("[[paper.maintenance_tiers.COIN]]") is MaintenanceTierConfig


# --- commands.md: every command and option of the CLI --------------------------------


def _cli_commands() -> dict[str, Any]:
    """Every command by its full name, e.g. "hedgebot audit verify" (typer's click)."""
    found: dict[str, Any] = {}

    def walk(command: Any, path: str) -> None:
        group = hasattr(command, "commands")
        # A group is a command of its own when it runs without a subcommand (audit).
        if path != "hedgebot" and (not group or command.invoke_without_command):
            found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "hedgebot")
    return found


def _options(command: Any) -> list[set[str]]:
    """Each option's names, e.g. {"--config", "-c"}; --help left out."""
    return [
        set(param.opts)
        for param in command.params
        if param.param_type_name == "option" and "--help" not in param.opts
    ]


def test_every_command_and_option_is_documented_as_it_is() -> None:
    text = (DOCS / "commands.md").read_text(encoding="utf-8")
    documented: dict[str, str] = {}
    for heading, body in _sections(text):
        named = re.fullmatch(r"`(hedgebot [a-z -]+)`", heading)
        if named:
            synopsis = re.search(r"```text\n(.*?)```", body, flags=re.DOTALL)
            assert synopsis, f"{heading}: no ```text synopsis"
            documented[named.group(1)] = synopsis.group(1)
    commands = _cli_commands()
    assert set(documented) == set(commands)
    for path, command in commands.items():
        shown = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", documented[path]))
        options = _options(command)
        missing = [sorted(names) for names in options if not names & shown]
        assert not missing, f"{path}: options not in its synopsis: {missing}"
        unknown = shown - set().union(*options)
        assert not unknown, f"{path}: the synopsis shows options it does not have: {unknown}"


# --- audit.md: every audit kind the code writes ---------------------------------------

AUDIT_CALLS = {"append_audit", "_audit_row"}


def _kinds(node: ast.expr, scope: ast.AST) -> set[str]:
    """The audit kinds an expression can be, as far as this test knows the shapes."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _kinds(node.body, scope) | _kinds(node.orelse, scope)
    if isinstance(node, ast.JoinedStr):
        head = node.values[0]
        if isinstance(head, ast.Constant) and head.value == "order.":
            # An order's outcome; a pending order's event is its order.intent.
            return {f"order.{s.value}" for s in OrderStatus if s is not OrderStatus.PENDING}
        if isinstance(head, ast.Constant) and head.value == "margin.":
            # A margin transfer's state (bot/store/margin_transfers.py).
            return {f"margin.{s.value}" for s in TransferState}
    if isinstance(node, ast.Name):
        assigned = [
            n.value
            for n in ast.walk(scope)
            if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets)
        ]
        if assigned:
            return set().union(*(_kinds(value, scope) for value in assigned))
    raise AssertionError(f"line {node.lineno}: teach this test the audit kinds of {ast.dump(node)}")


def _code_kinds() -> set[str]:
    kinds: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if function.name in AUDIT_CALLS:
                continue  # the writers themselves pass their `kind` on
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                name = getattr(call.func, "attr", getattr(call.func, "id", None))
                if name not in AUDIT_CALLS:
                    continue
                kind = call.args[0] if call.args else None
                kind = kind or next(k.value for k in call.keywords if k.arg == "kind")
                kinds |= _kinds(kind, function)
    return kinds


def _documented_kinds() -> set[str]:
    text = (DOCS / "audit.md").read_text(encoding="utf-8")
    body = dict(_sections(text))["Kinds"]
    return {k for row in _table_rows(body) for k in re.findall(r"`([a-z_.]+)`", row[0])}


def test_every_audit_kind_the_code_writes_is_documented_and_no_other() -> None:
    code = _code_kinds()
    assert {"decision", "order.intent", "order.filled", "pair.paused", "lease.lost"} <= code
    documented = _documented_kinds()
    assert code - documented == set(), "audit kinds missing from docs/audit.md"
    assert documented - code == set(), "docs/audit.md lists kinds the code no longer writes"


def test_the_kind_finder_refuses_a_shape_it_does_not_know() -> None:
    call = ast.parse("repo.append_audit(kind_of(x), 'summary')").body[0]
    assert isinstance(call, ast.Expr)
    assert isinstance(call.value, ast.Call)
    with pytest.raises(AssertionError, match="teach this test"):
        _kinds(call.value.args[0], call)


# --- the README and the pages' shape --------------------------------------------------


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES
    for command in ("make demo", "make test"):
        assert command in "\n".join(lines)


@pytest.mark.parametrize("page", [README, *OWN_PAGES], ids=lambda p: Path(p).name)
def test_no_table_cell_is_long(page: Path) -> None:
    for heading, body in _sections(page.read_text(encoding="utf-8")):
        for row in _table_rows(body):
            long = [c[:60] for c in row if len(c) > MAX_CELL]
            assert not long, f"{page.name} § {heading}: cells over {MAX_CELL} characters: {long}"


def _anchors(page: Path) -> set[str]:
    md = markdown.Markdown(extensions=["toc", "tables", "fenced_code"])
    md.convert(page.read_text(encoding="utf-8"))
    anchors: set[str] = set()

    def collect(tokens: list[dict[str, object]]) -> None:
        for token in tokens:
            anchors.add(str(token["id"]))
            children = token["children"]
            assert isinstance(children, list)
            collect(children)

    collect(md.toc_tokens)  # type: ignore[attr-defined]
    return anchors


def test_the_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local)
    for link in local:
        target, _, anchor = link.partition("#")
        path = ROOT / target
        assert path.exists(), link
        if anchor:
            assert anchor in _anchors(path), link


def test_every_page_is_in_the_nav() -> None:
    config = load_config(str(ROOT / "mkdocs.yml"))
    nav = {next(iter(entry.values())) for entry in config["nav"]}
    assert nav == {p.name for p in DOCS.glob("*.md")}


# --- the site builds in strict mode, and strict mode catches a broken anchor ----------


def _build(root: Path) -> None:
    config = load_config(str(root / "mkdocs.yml"), site_dir=str(root / "site"))
    build(config)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    _build(tmp_path)
    assert (tmp_path / "site" / "configuration" / "index.html").exists()


@pytest.mark.parametrize(
    "link", ["[gone](configuration.md#no-such-section)", "[gone](no-such-page.md)"]
)
def test_a_broken_link_fails_the_build(tmp_path: Path, link: str) -> None:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    with (tmp_path / "docs" / "risk.md").open("a", encoding="utf-8") as page:
        page.write(f"\nSee {link}.\n")
    with pytest.raises(Abort):
        _build(tmp_path)


def test_the_examples_extractor_skips_what_is_marked_not_run(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```console\n$ hedgebot status\noutput line\n$ hedgebot audit \\\n"
        "    --pair BTC   # exit 2\n```\n\n"
        "<!-- not-run: needs Docker -->\n```sh\ndocker compose up -d\n```\n\n"
        "```sh\n# a comment\nhedgebot plan\n```\n\n```text\n$ hedgebot run\n```\n",
        encoding="utf-8",
    )
    found = [(e.line, e.command, e.exit_code) for e in examples(page)]
    assert found == [
        (2, "hedgebot status", 0),
        (4, "hedgebot audit --pair BTC", 2),
        (15, "hedgebot plan", 0),
    ]


def test_every_variable_the_documents_name_exists() -> None:
    named: set[str] = set()
    for page in [README, *DOCS.glob("*.md")]:
        named |= set(re.findall(r"HEDGEBOT_[A-Z0-9_]*[A-Z0-9]", page.read_text(encoding="utf-8")))
    assert {"HEDGEBOT_LIVE_CONFIRM", "HEDGEBOT_HTTP__PORT"} <= named
    unknown = sorted(n for n in named - NON_SETTINGS_VARIABLES if not settings_path_exists(n))
    assert unknown == []
