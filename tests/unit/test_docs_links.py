"""The documentation stands alone: its links resolve inside the repository and its tables name every setting."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target "title") and ![alt](target); reference definitions: [name]: target
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, …
ISSUE_NUMBER = re.compile(r"\bissues?\s*(?:#|no\.?\s*)?\d+", re.I)  # "Issue 6", "issue #12"


def prose(text):
    """The text a reader sees as prose: code blocks and code spans removed (they hold no links)."""
    return CODE_SPAN.sub("", FENCED_BLOCK.sub("", text))


def links(text):
    """Every link target in a markdown text (inline, image and reference-style)."""
    body = prose(text)
    return INLINE_LINK.findall(body) + REFERENCE_LINK.findall(body)


def slug(heading):
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCED_BLOCK.sub("", path.read_text()), re.M)
    return {slug(h) for h in headings}


def broken_links(path):
    """(target, why) for each relative link of `path` that does not resolve to a file in the repository."""
    problems = []
    for target in links(path.read_text()):
        if EXTERNAL.match(target):
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(ROOT):
            problems.append((target, "points outside the repository"))
        elif not resolved.exists():
            problems.append((target, "no such file"))
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append((target, f"no heading #{fragment} in {resolved.relative_to(ROOT)}"))
    return problems


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_in_the_repository(path):
    assert broken_links(path) == []


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_refers_to_the_team_s_shared_folder(path):
    """A clone has no ../shared: not as a link, not as a path in prose or code."""
    text = path.read_text()
    assert "../shared" not in text
    assert "shared/design" not in text


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_names_an_issue_number(path):
    assert ISSUE_NUMBER.findall(path.read_text()) == []


def test_the_link_checker_finds_what_it_must(tmp_path):
    """The checks above would catch a broken link, an escape, a missing anchor and an issue number."""
    doc = ROOT / "docs" / "protocol.md"
    assert links("see [a](docs/a.md), ![b](b.png) and `[c](not-a-link)`\n\n[d]: ../d.md\n") == [
        "docs/a.md",
        "b.png",
        "../d.md",
    ]
    assert "invariants" in anchors(doc)
    assert slug("Running it: `python wsgi.py`") == "running-it-python-wsgipy"
    assert ISSUE_NUMBER.findall("Issue 6 asks; see issue #12; order #12 is fine") == ["Issue 6", "issue #12"]
    outside = tmp_path / "x.md"
    outside.write_text("[p](../../shared/design/checkout-protocol.md) [q](README.md)")
    assert [why for _, why in broken_links(outside)] == ["points outside the repository"] * 2


def environment_variables(source, readers):
    """Names of environment variables a module reads: `env.get("X")`, `os.environ["X"]`, `reader("X")`…

    `readers` maps a helper function's name to the prefix it puts before its argument.
    """
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.args[0].value
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault") and _is_environ(func.value):
                names.add(name)
            elif isinstance(func, ast.Name) and func.id in readers:
                names.add(readers[func.id] + name)
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                names.add(name)
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.slice, ast.Constant):
            names.add(node.slice.value)
    return {name for name in names if isinstance(name, str)}


def _is_environ(node):
    return (isinstance(node, ast.Name) and node.id in ("env", "environ")) or (
        isinstance(node, ast.Attribute) and node.attr == "environ"
    )


def table_names(markdown, heading):
    """The backticked names in the first column of the tables under `## heading` (up to the next `## `)."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("|"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", line.split("|")[1]))
    return names


@pytest.mark.parametrize("module", ["storefront/config.py", "wsgi.py"])
def test_every_setting_the_store_reads_is_in_the_readme_configuration_table(module):
    read = environment_variables((ROOT / module).read_text(), {"_env_float": ""})
    assert read, f"found no environment variables in {module}: the parser no longer matches the code"
    documented = table_names((ROOT / "README.md").read_text(), "Configuration")
    assert sorted(read - documented) == []


def test_every_setting_the_sandbox_reads_is_in_its_doc_table():
    read = environment_variables(
        (ROOT / "stripe_sandbox" / "__main__.py").read_text(),
        {"_env": "STRIPE_SANDBOX_", "_env_list": "STRIPE_SANDBOX_"},
    )
    assert read
    table = (ROOT / "docs" / "stripe-sandbox.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in table) == []


def test_the_settings_parser_sees_every_form_the_code_uses():
    source = 'import os\nenv = os.environ\nenv.get("A")\nos.environ["B"]\nos.environ.setdefault("C", "")\n_f("D")\n'
    assert environment_variables(source, {"_f": "P_"}) == {"A", "B", "C", "P_D"}
    assert table_names(
        "x\n## Configuration\n\n| a | b |\n|---|---|\n| `X`, `Y` | `Z` |\n## Next\n| `W` |", "Configuration"
    ) == {"X", "Y"}


def handled_event_types():
    """The event types storefront/webhooks/inbox.py dispatches (the keys of its HANDLERS dict)."""
    tree = ast.parse((ROOT / "storefront" / "webhooks" / "inbox.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "HANDLERS" for t in node.targets):
            return {key.value for key in node.value.keys}
    raise AssertionError("storefront/webhooks/inbox.py has no HANDLERS dict")


def real_stripe_section():
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n### With real Stripe", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]


def test_the_readme_lists_exactly_the_events_a_dashboard_endpoint_must_send():
    listed = set(re.findall(r"^- `([a-z_]+\.[a-z_.]+)`$", real_stripe_section(), re.M))
    assert listed == handled_event_types()


def test_the_real_stripe_steps_get_the_signing_secret_before_exporting_it():
    steps = real_stripe_section()
    order = [
        steps.index(step)
        for step in ("stripe login", "stripe listen --forward-to", "STRIPE_WEBHOOK_SECRET=", "wsgi.py")
    ]
    assert order == sorted(order)
