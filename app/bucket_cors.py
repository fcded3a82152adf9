"""The media bucket's CORS rules: the one definition the SAM template and the local stack share.

Browsers PUT upload parts straight to the bucket from the site's pages, so the
bucket answers CORS for exactly the site's origin, exactly ``PUT``, exactly the
request headers a part upload sends, and exposes ``ETag`` (the browser reads
each part's ETag to complete the upload). Nothing else is allowed: reads go
through the front door, same-origin. The SAM template's ``BucketCors`` custom
resource carries :func:`s3_cors` for the site's URL (``tests/infra`` checks they
are equal); the local bootstrap applies it to the emulator's bucket with the
local site's origin. See docs/uploads.md#cors.
"""

from __future__ import annotations

from typing import Any

ALLOWED_METHODS = ("PUT",)
"""UploadPart is a PUT; create/list/complete/abort go through the web app, not the browser."""
ALLOWED_HEADERS = ("content-type",)
"""A Blob's type becomes the part's Content-Type; presigned URLs carry everything else."""
EXPOSED_HEADERS = ("ETag",)
MAX_AGE_SECONDS = 3000
"""How long a browser may reuse a preflight answer."""
RULE_ID = "browser-upload-parts"


def s3_cors(origin: str) -> dict[str, Any]:
    """``CORSConfiguration`` for ``s3.put_bucket_cors`` with ``origin`` (``scheme://host[:port]``)."""
    return {
        "CORSRules": [
            {
                "ID": RULE_ID,
                "AllowedOrigins": [origin],
                "AllowedMethods": list(ALLOWED_METHODS),
                "AllowedHeaders": list(ALLOWED_HEADERS),
                "ExposeHeaders": list(EXPOSED_HEADERS),
                "MaxAgeSeconds": MAX_AGE_SECONDS,
            }
        ]
    }
