"""Checks every page must pass in Chromium: no sideways panning, axe-core clean, no CSP violation."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
BLOCKING_IMPACTS = ("serious", "critical")

# label-content-name-mismatch is one of axe's experimental rules, off by default: turned on here.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"],
    rules: {"label-content-name-mismatch": {enabled: true}}});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
}"""


def axe_violations(page):
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol, so the page's own CSP does not apply to the test's tool.
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    return [v for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING_IMPACTS]


def horizontal_overflow(page):
    """How far the page is wider than its viewport (0 when nothing pans sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def csp_violations(page):
    return page.evaluate("window.__cspViolations || []")


def assert_page_is_sound(page, name):
    """The page fits the viewport, its header included, and has no serious accessibility or CSP problem."""
    assert horizontal_overflow(page) <= 0, f"{name}: the page pans sideways by {horizontal_overflow(page)} px"
    header = page.locator(".site-header__inner").bounding_box()
    width = page.viewport_size["width"]
    assert header["x"] >= 0 and header["x"] + header["width"] <= width, f"{name}: header {header} > {width} px"
    violations = axe_violations(page)
    assert not violations, f"{name}: axe-core found {violations}"
    assert not csp_violations(page), f"{name}: Content-Security-Policy violations {csp_violations(page)}"
