"""Generate docs/api.md from the application's OpenAPI schema (`make docs`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from qorgau.api.app import create_app
from qorgau.core.platform import Platform
from qorgau.core.settings import Settings

INTRO = """# HTTP API reference

Generated from the code by `make docs` (`docs/gen_api.py`); do not edit by hand. The live, interactive
version is served by every instance at `/api/docs` (OpenAPI JSON at `/api/openapi.json`).

## Conventions
- Versioned under `/api/v1`. JSON in, JSON out. Unknown fields in a body are rejected (422).
- **Authentication**: machines send `Authorization: Bearer qk_…` (an API key: `qorgau keys create` or
  `POST /api/v1/api-keys`). Browsers use the login session cookie; state-changing calls with a cookie
  must send the session's CSRF token in `X-CSRF-Token`.
- **Tenancy**: every key and user belongs to one organization; every object you can reach is your
  organization's. Another organization's id answers 404, exactly like an id that does not exist.
- **Errors** always look like `{"error": {"code": "...", "message": "...", "field": "..."}}`; `field`
  names the offending input (`roles.0`, `bin`, `tree_size`, `body`…) and the rejected value is never
  echoed back (it may be personal data). Codes: `invalid_input` 422, `unauthenticated` 401,
  `forbidden` 403, `not_found` 404, `conflict` 409, `payload_too_large` 413, `internal_error` 500.
- Bodies over `QORGAU_MAX_REQUEST_BYTES` (default 10 MiB) are refused with 413 before being read.
- Ids are integers below 2^53.

## Verifying the audit log yourself
`GET /api/v1/audit/entries/{id}` returns `leaf`: the exact bytes hashed into the log. Then
`leaf_hash = SHA-256(0x00 ‖ leaf)`; `GET …/proof` returns the RFC 6962 audit path and the signed tree
head it leads to; `GET /api/v1/audit/public-key` is the Ed25519 key that signs tree heads (the signed
message is `"qorgau-sth/v1\\n{tree_size}\\n{root_hex}\\n{signed_at}\\n"`). `GET /api/v1/audit/consistency`
proves that a newer head extends an older one. Tree heads, the key and consistency proofs are public.

## Endpoints
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        platform = Platform.initialize(Settings(data_dir=Path(tmp), sth_interval_seconds=0))
        spec = create_app(platform).openapi()
        platform.close()
    print(INTRO)
    print("| method | path | what it does | tag |")
    print("|---|---|---|---|")
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            print(f"| {method.upper()} | `{path}` | {op.get('summary', '')} | {', '.join(op.get('tags', []))} |")


if __name__ == "__main__":
    main()
