"""The embedded local stack: AWS emulator, bootstrap, local CloudFront edge, demo media.

Never imported by Lambda code."""
