"""One front door: where each path of the site goes, read from infra/template.yaml.

One CloudFront distribution serves the whole product on one host
(docs/deploy.md, "One front door"): pages and ``/api/*`` go uncached to the
HTTP API, ``/static/*`` to the same origin but cached, ``/posters/*`` publicly
and ``/videos/*`` only against a signature to the private bucket. The
functions learn that host (custom domain or the distribution's own name) from
the template, in the same deploy, which is only possible because nothing the
distribution needs depends on a function: the dependency test below runs the
SAM transform and proves it. Each test runs against the deployments of
``tests/infra/cfn.py`` SCENARIOS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from app.config import CognitoSettings, Settings
from tests.infra.cfn import (
    SCENARIOS,
    cycles,
    dependencies,
    http_api_routes,
    load,
    render,
    requires,
    resolve,
    route_key_for,
    rule_failures,
    sam_transform,
)

RAW = load()
DEPLOYMENTS = {name: resolve(RAW, overrides) for name, overrides in SCENARIOS.items()}
ALL = pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))

# AWS managed policies, by the IDs CloudFormation takes (CloudFront Developer Guide:
# "Use managed cache policies", "Use managed origin request policies", "Use managed
# response headers policies").
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
CORS_S3_ORIGIN = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"

WEB = "web-api"
BUCKET = "video-bucket"
EVERY_METHOD = {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}

# What a deployment knows once CloudFormation has created the resources.
DISTRIBUTION_NAME = "d111111abcdef8.cloudfront.net"
KNOWN = {
    "AWS::Region": "eu-west-1",
    "AWS::URLSuffix": "amazonaws.com",
    "Distribution.DomainName": DISTRIBUTION_NAME,
    "UserPoolDomain": SCENARIOS["oai"]["CognitoDomainPrefix"],
}


@dataclass(frozen=True)
class Behavior:
    origin: str
    cache_policy: Any
    origin_request_policy: str | None
    methods: set[str]
    signed: bool


EXPECTED: dict[str | None, Behavior] = {
    # Pages and /api/*: never cached, everything but Host forwarded (API Gateway
    # answers 403 to the distribution's Host).
    None: Behavior(WEB, CACHING_DISABLED, ALL_VIEWER_EXCEPT_HOST_HEADER, EVERY_METHOD, False),
    "/static/*": Behavior(WEB, {"Ref": "StaticCachePolicy"}, None, {"GET", "HEAD"}, False),
    "/posters/*": Behavior(BUCKET, CACHING_OPTIMIZED, None, {"GET", "HEAD"}, False),
    # CORS-S3Origin forwards Origin and the preflight headers only: never the
    # signature's query string or cookies.
    "/videos/*": Behavior(
        BUCKET, CACHING_OPTIMIZED, CORS_S3_ORIGIN, {"GET", "HEAD", "OPTIONS"}, True
    ),
}
"""Path pattern (None: the default behavior) -> where it goes and how."""


def _config(deployment: str) -> dict[str, Any]:
    config: dict[str, Any] = DEPLOYMENTS[deployment]["Resources"]["Distribution"]["Properties"][
        "DistributionConfig"
    ]
    return config


def _behaviors(deployment: str) -> dict[str | None, dict[str, Any]]:
    config = _config(deployment)
    behaviors: dict[str | None, dict[str, Any]] = {None: config["DefaultCacheBehavior"]}
    for behavior in config.get("CacheBehaviors", []):
        assert behavior["PathPattern"] not in behaviors, behavior["PathPattern"]
        behaviors[behavior["PathPattern"]] = behavior
    return behaviors


def _values(deployment: str) -> dict[str, str]:
    return {**DEPLOYMENTS[deployment]["_parameters"], **KNOWN}


def _site_url(deployment: str) -> str:
    domain = SCENARIOS[deployment].get("DomainName")
    return f"https://{domain or DISTRIBUTION_NAME}"


def _glob(pattern: str, path: str) -> bool:
    """CloudFront path-pattern matching: ``*`` any characters (``/`` too), ``?`` one."""
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(_glob(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and (head == "?" or head == path[0]) and _glob(rest, path[1:])


def _behavior_for(deployment: str, path: str) -> dict[str, Any]:
    """The behavior CloudFront picks for ``path``: the first pattern that matches, in order."""
    config = _config(deployment)
    for behavior in config.get("CacheBehaviors", []):
        if _glob(behavior["PathPattern"], path):
            return dict(behavior)
    return dict(config["DefaultCacheBehavior"])


# --------------------------------------------------------------------------- behaviors


@ALL
def test_each_path_pattern_goes_to_its_origin_with_its_policies(deployment: str) -> None:
    behaviors = _behaviors(deployment)
    assert set(behaviors) == set(EXPECTED)
    for pattern, want in EXPECTED.items():
        got = behaviors[pattern]
        assert got["TargetOriginId"] == want.origin, pattern
        assert got["CachePolicyId"] == want.cache_policy, pattern
        assert got.get("OriginRequestPolicyId") == want.origin_request_policy, pattern
        assert set(got["AllowedMethods"]) == want.methods, pattern
        # Only reads are cached; OPTIONS stays out (its answer depends on preflight headers).
        assert set(got["CachedMethods"]) == {"GET", "HEAD"}, pattern
        assert ("TrustedKeyGroups" in got) == want.signed, pattern
        if want.signed:
            assert got["TrustedKeyGroups"] == [{"Ref": "SigningKeyGroup"}]
        assert "ForwardedValues" not in got, f"{pattern}: legacy cache settings"
        assert got["ViewerProtocolPolicy"] == "redirect-to-https", pattern


@ALL
def test_pages_and_media_carry_the_security_headers_policy(deployment: str) -> None:
    for pattern, behavior in _behaviors(deployment).items():
        assert behavior["ResponseHeadersPolicyId"] == SECURITY_HEADERS, pattern


@ALL
def test_requests_reach_the_behavior_their_path_names(deployment: str) -> None:
    cases = {
        "/": (WEB, CACHING_DISABLED),
        "/api/videos/abc/playback": (WEB, CACHING_DISABLED),
        "/auth/sign-in": (WEB, CACHING_DISABLED),
        "/static/player.js": (WEB, {"Ref": "StaticCachePolicy"}),
        "/posters/abc.jpg": (BUCKET, CACHING_OPTIMIZED),
        "/videos/abc/hls/master.m3u8": (BUCKET, CACHING_OPTIMIZED),
        "/videos/abc/hls/720p/segment_00001.m4s": (BUCKET, CACHING_OPTIMIZED),
        "/videos/abc/clip.mp4": (BUCKET, CACHING_OPTIMIZED),
        # Other bucket folders are never served: they fall through to the web app.
        "/uploads/u1/original.mov": (WEB, CACHING_DISABLED),
        "/reports/daily.csv": (WEB, CACHING_DISABLED),
    }
    for path, (origin, cache_policy) in cases.items():
        behavior = _behavior_for(deployment, path)
        assert (behavior["TargetOriginId"], behavior["CachePolicyId"]) == (origin, cache_policy), (
            path
        )
    assert "TrustedKeyGroups" in _behavior_for(deployment, "/videos/abc/clip.mp4")
    assert "TrustedKeyGroups" not in _behavior_for(deployment, "/posters/abc.jpg")


def test_the_path_matcher_follows_cloudfronts_wildcards() -> None:
    # The matcher the routing tests rely on, against CloudFront's documented semantics.
    assert _glob("/videos/*", "/videos/a/b/c.m4s")
    assert _glob("/videos/*", "/videos/")
    assert not _glob("/videos/*", "/videos")
    assert not _glob("/videos/*", "/admin/videos/a")
    assert _glob("/images/?.jpg", "/images/1.jpg")
    assert not _glob("/images/?.jpg", "/images/10.jpg")


def test_no_two_path_patterns_overlap_so_their_order_cannot_matter() -> None:
    patterns = [p for p in EXPECTED if p is not None]
    for pattern in patterns:
        prefix = pattern.rstrip("*")
        for other in patterns:
            if other != pattern:
                assert not _glob(other, prefix + "x"), (pattern, other)


@ALL
def test_the_web_origin_is_this_stacks_http_api_over_tls_1_2(deployment: str) -> None:
    origins = {origin["Id"]: origin for origin in _config(deployment)["Origins"]}
    assert set(origins) == {WEB, BUCKET}
    web = origins[WEB]
    assert web["DomainName"] == {
        "Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert web["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert web["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    assert "S3OriginConfig" not in web
    assert RAW["Resources"]["HttpApi"]["Type"] == "AWS::ApiGatewayV2::Api"


def test_static_files_stay_at_the_edge_for_minutes_not_days() -> None:
    config = RAW["Resources"]["StaticCachePolicy"]["Properties"]["CachePolicyConfig"]
    # Flask answers /static with "Cache-Control: no-cache"; with MinTTL 0 CloudFront would
    # not cache at all, with MinTTL > 0 it keeps the file that long.
    assert 0 < config["MinTTL"] <= 900
    assert config["MinTTL"] <= config["DefaultTTL"] <= config["MaxTTL"] <= 86400
    key = config["ParametersInCacheKeyAndForwardedToOrigin"]
    # No cookie reaches the web app on /static, so no session is read or written there.
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    # A versioned URL (?v=...) is a different object.
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    assert key["EnableAcceptEncodingGzip"] is True
    assert key["EnableAcceptEncodingBrotli"] is True


# --------------------------------------------------------------------------- custom domain


@ALL
def test_a_custom_domain_brings_its_alias_and_certificate_and_none_keeps_cloudfronts(
    deployment: str,
) -> None:
    config = _config(deployment)
    domain = SCENARIOS[deployment].get("DomainName")
    if domain:
        assert render(config["Aliases"], _values(deployment)) == [domain]
        assert config["ViewerCertificate"] == {
            "AcmCertificateArn": {"Ref": "AcmCertificateArn"},
            "SslSupportMethod": "sni-only",
            "MinimumProtocolVersion": "TLSv1.2_2021",
        }
    else:
        assert "Aliases" not in config
        assert config["ViewerCertificate"] == {"CloudFrontDefaultCertificate": True}


def test_the_domain_and_its_certificate_come_together_or_not_at_all() -> None:
    certificate = SCENARIOS["custom-domain"]["AcmCertificateArn"]
    base = SCENARIOS["oai"]
    assert rule_failures(RAW, base) == []
    assert rule_failures(RAW, SCENARIOS["custom-domain"]) == []
    (alone,) = rule_failures(RAW, {**base, "DomainName": "watch.example.com"})
    assert "AcmCertificateArn" in alone
    (orphan,) = rule_failures(RAW, {**base, "AcmCertificateArn": certificate})
    assert "DomainName" in orphan


def test_the_certificate_parameter_accepts_us_east_1_certificates_only() -> None:
    pattern = re.compile(RAW["Parameters"]["AcmCertificateArn"]["AllowedPattern"])
    assert pattern.fullmatch(SCENARIOS["custom-domain"]["AcmCertificateArn"])
    assert pattern.fullmatch("")
    assert not pattern.fullmatch("arn:aws:acm:eu-west-1:123456789012:certificate/abc-1")


# --------------------------------------------------------------------------- the site URL


@ALL
def test_the_functions_sign_and_redirect_for_the_sites_own_url(deployment: str) -> None:
    resources = DEPLOYMENTS[deployment]["Resources"]
    site = _site_url(deployment)
    values = _values(deployment)

    def env(function: str) -> dict[str, Any]:
        variables: dict[str, Any] = resources[function]["Properties"]["Environment"]["Variables"]
        return variables

    # The viewer API signs URLs and cookies for the host the browser is on.
    assert render(env("PlaybackFunction")["VIDGATE_CDN_URL"], values) == site
    # The web app signs the same way in-process and redirects (and checks CSRF origins)
    # against the site, not against the API's own host; so do the admin pages.
    assert render(env("WebFunction")["VIDGATE_CDN_URL"], values) == site
    assert render(env("WebFunction")["VIDGATE_BASE_URL"], values) == site
    assert render(env("AdminWebFunction")["VIDGATE_BASE_URL"], values) == site
    assert render(DEPLOYMENTS[deployment]["Outputs"]["SiteUrl"]["Value"], values) == site


@ALL
def test_the_app_client_accepts_the_sites_callback_without_a_second_deploy(
    deployment: str,
) -> None:
    client = DEPLOYMENTS[deployment]["Resources"]["UserPoolClient"]["Properties"]
    values = _values(deployment)
    site = _site_url(deployment)
    extra_callbacks = [
        u for u in SCENARIOS[deployment].get("ExtraCallbackUrls", "").split(",") if u
    ]
    extra_logouts = [u for u in SCENARIOS[deployment].get("ExtraLogoutUrls", "").split(",") if u]
    assert render(client["CallbackURLs"], values) == [f"{site}/auth/callback", *extra_callbacks]
    assert render(client["LogoutURLs"], values) == [f"{site}/", *extra_logouts]


@pytest.mark.parametrize("function", ["WebFunction", "AdminWebFunction"])
@ALL
def test_the_web_app_uses_the_hosted_ui_exactly_when_asked(deployment: str, function: str) -> None:
    # The admin pages refresh a hosted-UI session's tokens at the hosted UI too.
    env = DEPLOYMENTS[deployment]["Resources"][function]["Properties"]["Environment"]["Variables"]
    if DEPLOYMENTS[deployment]["_parameters"]["SignInWith"] == "hosted-ui":
        assert render(env["VIDGATE_COGNITO_DOMAIN"], _values(deployment)) == (
            "https://vidgate-test.auth.eu-west-1.amazoncognito.com"
        )
    else:
        assert "VIDGATE_COGNITO_DOMAIN" not in env


# --------------------------------------------------------------------------- dependencies


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The shape a SAM HttpApi with function events would give: the API body names the function.
    graph = {
        "Function": {"Distribution"},
        "Distribution": {"Api"},
        "Api": {"Function"},
        "Bucket": set(),
    }
    assert cycles(graph) == {"Function", "Distribution", "Api"}
    assert cycles({**graph, "Api": set()}) == set()


@pytest.mark.parametrize("scenario", ["oai", "oac", "custom-domain"])
def test_one_deploy_suffices_the_distribution_needs_no_function_and_nothing_cycles(
    scenario: str,
) -> None:
    output = sam_transform(SCENARIOS[scenario])
    graph = dependencies(output)
    assert cycles(graph) == set()
    resources = output["Resources"]
    functions = {n for n, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions >= {
        "PlaybackFunction",
        "AdminFunction",
        "WebFunction",
        "AdminWebFunction",
        "TriggerFunction",
    }
    needed = requires(graph, "Distribution")
    assert "HttpApi" in needed
    assert not needed & functions, needed & functions
    # ...and the functions that build URLs get the distribution's name in the same deploy.
    for function in ("PlaybackFunction", "WebFunction", "AdminWebFunction"):
        assert "Distribution" in requires(graph, function), function
    # The API's routes reach the functions, and nothing routes before the function exists.
    for name, resource in resources.items():
        if resource["Type"] == "AWS::ApiGatewayV2::Route":
            assert requires(graph, name) & functions, name


# --------------------------------------------------------------------------- web routes


WEB_FUNCTION_OF_PAGES = {"viewer": "WebFunction", "admin": "AdminWebFunction"}
"""Which function serves which pages (create_app(pages=...) in its entry module)."""


def _web_settings() -> Settings:
    return Settings(
        region="eu-west-1",
        cognito=CognitoSettings(
            region="eu-west-1",
            user_pool_id="eu-west-1_Example",
            client_id="client",
            issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example",
            jwks_url="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example/.well-known/jwks.json",
            domain=None,
            leeway_seconds=5,
        ),
        users_table="users",
        videos_table="videos",
        audit_table="audit",
        sessions_table="sessions",
        session_key_id="alias/sessions",
        bucket="bucket",
        cdn_url=f"https://{DISTRIBUTION_NAME}",
        web_secret_key="x" * 40,
        web_base_url=f"https://{DISTRIBUTION_NAME}",
    )


@pytest.fixture(scope="module")
def web_rules() -> dict[str, list[tuple[str, str, str]]]:
    """(rule, method, endpoint) of every URL rule each web app serves, by its ``pages``
    (create_app, no AWS call: the clients are lazy); rules kept only for building URLs
    are left out, they answer nothing."""
    from app.web import create_app

    rules: dict[str, list[tuple[str, str, str]]] = {}
    for pages in ("all", "viewer", "admin"):
        # Without signing settings the viewer API logs that it could not warm up: harmless here.
        app = create_app(_web_settings(), pages=pages)
        rules[pages] = sorted(
            (rule.rule, method, str(rule.endpoint))
            for rule in app.url_map.iter_rules()
            if not rule.build_only
            for method in sorted(rule.methods or ())
        )
    return rules


def _sample(rule: str) -> str:
    """A concrete path the rule answers: every <converter:name> becomes one segment."""
    return re.sub(r"<[^>]+>", "x", rule)


def test_every_web_page_is_reachable_through_the_distribution(
    web_rules: dict[str, list[tuple[str, str, str]]],
) -> None:
    # A page under a bucket pattern would be answered by S3 (or refused without a signature)
    # and never reach the web app.
    assert web_rules["all"], "the web app has no URL rules?"
    misrouted = {
        rule: _behavior_for("oai", _sample(rule)).get("PathPattern")
        for rule, _method, _endpoint in web_rules["all"]
        if _behavior_for("oai", _sample(rule))["TargetOriginId"] != WEB
    }
    assert misrouted == {}


@pytest.mark.parametrize("pages", sorted(WEB_FUNCTION_OF_PAGES))
def test_the_http_api_sends_each_page_to_the_function_that_serves_it(
    web_rules: dict[str, list[tuple[str, str, str]]], pages: str
) -> None:
    routes = http_api_routes(RAW)
    function = WEB_FUNCTION_OF_PAGES[pages]
    misrouted = {}
    for rule, method, endpoint in web_rules[pages]:
        if pages == "admin" and endpoint == "static":
            continue  # /static/* is the viewer function's; the admin pages link to it
        route = route_key_for(routes, method, _sample(rule))
        if route is None or routes[route] != function:
            misrouted[(method, rule)] = route and routes[route]
    assert misrouted == {}
    # Together the two apps serve every page of the local app, which serves both.
    assert set(web_rules["all"]) == {*web_rules["viewer"], *web_rules["admin"]}


def test_the_route_matcher_follows_the_http_apis_priorities() -> None:
    routes = http_api_routes(RAW)
    assert route_key_for(routes, "POST", "/api/videos/v1/playback") == (
        "POST /api/videos/{id}/playback"
    )
    assert route_key_for(routes, "GET", "/api/videos/v1/playback") == "$default"
    assert route_key_for(routes, "DELETE", "/admin") == "ANY /admin"
    assert route_key_for(routes, "GET", "/admin/") == "ANY /admin"
    assert route_key_for(routes, "POST", "/admin/users/u1/grant") == "ANY /admin/{proxy+}"
    assert route_key_for(routes, "GET", "/administrator") == "$default"
    assert route_key_for(routes, "GET", "/api/admin/users") == "GET /api/admin/users"
    assert route_key_for(["GET /a/{id}"], "GET", "/a/b/c") is None


def test_only_an_http_api_with_payload_2_is_deployed() -> None:
    """The router reads payload 2.0 only: no REST API, and every integration asks for 2.0."""
    types = {resource["Type"] for resource in RAW["Resources"].values()}
    assert not types & {"AWS::ApiGateway::RestApi", "AWS::Serverless::Api"}
    integrations = [
        resource["Properties"]
        for resource in RAW["Resources"].values()
        if resource["Type"] == "AWS::ApiGatewayV2::Integration"
    ]
    assert integrations
    assert {i["PayloadFormatVersion"] for i in integrations} == {"2.0"}
    for function in RAW["Resources"].values():
        events = function.get("Properties", {}).get("Events", {}) or {}
        assert all(e["Type"] != "Api" for e in events.values())
