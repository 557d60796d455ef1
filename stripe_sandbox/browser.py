"""What a browser loads from the sandbox: the Stripe.js shim (/v3/) and the 3D Secure page."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, current_app, request
from markupsafe import escape

bp = Blueprint("browser", __name__)
SHIM = Path(__file__).with_name("static") / "stripe.js"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sandbox 3D Secure</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">
<h1>3D Secure test payment</h1>
<p>PaymentIntent <code>{pi_id}</code> asks the shopper to authenticate.</p>
<button data-testid="sandbox-3ds-complete" data-outcome="complete">Complete authentication</button>
<button data-testid="sandbox-3ds-fail" data-outcome="fail">Fail authentication</button>
<p id="sandbox-3ds-status" data-testid="sandbox-3ds-status"></p>
<script>
const ctx = {ctx};
for (const button of document.querySelectorAll("button[data-outcome]")) {{
  button.addEventListener("click", async () => {{
    const resp = await fetch("/_sandbox/payment_intents/" + ctx.pi + "/authenticate", {{
      method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{outcome: button.dataset.outcome, client_secret: ctx.secret}})}});
    const body = await resp.json();
    const status = body.error ? "failed" : (body.status === "succeeded" ||
      body.status === "requires_capture" ? "succeeded" : "failed");
    if (!ctx.returnUrl) {{
      document.getElementById("sandbox-3ds-status").textContent = "Done: " + status;
      return;
    }}
    const url = new URL(ctx.returnUrl);
    url.searchParams.set("payment_intent", ctx.pi);
    url.searchParams.set("payment_intent_client_secret", ctx.secret);
    url.searchParams.set("redirect_status", status);
    window.location.assign(url.toString());
  }});
}}
</script>
</body></html>
"""


@bp.get("/v3")
@bp.get("/v3/")
def stripe_js():
    """The Stripe.js shim; it finds the API base from its own URL."""
    return Response(
        SHIM.read_text(encoding="utf-8"), mimetype="application/javascript", headers={"Cache-Control": "no-cache"}
    )


@bp.get("/_sandbox/3ds/<pi_id>")
def three_d_secure(pi_id):
    """The page a `redirect_to_url` next action points to."""
    ctx = {
        "pi": pi_id,
        "secret": request.args.get("client_secret", ""),
        "returnUrl": request.args.get("return_url", ""),
        "pk": current_app.config["SANDBOX_STATE"].settings.publishable_key,
    }
    ctx_json = json.dumps(ctx).replace("<", "\\u003c")
    return PAGE.format(pi_id=escape(pi_id), ctx=ctx_json)
