"""The URL policy: schemes, address classes, the allow-list, and pinning connections to checked addresses.

Nothing here connects anywhere: names resolve through an injected resolver, and
the transport test sends to an `httpx.MockTransport`.
"""

from __future__ import annotations

import httpx
import pytest

from rolegraph.errors import ToolError
from rolegraph.tools.urlpolicy import PolicyTransport, ResolvedUrl, UrlPolicy, UrlRefused, classify


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver answering from `table`; a name not in it does not resolve."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    return resolve


class TestClassify:
    """classify(ip): pure classification of an address."""

    @pytest.mark.parametrize(
        ("address", "kind"),
        [
            ("127.0.0.1", "loopback"),
            ("127.0.0.2", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "non-public"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fe80::1%eth0", "link-local"),
            ("ff02::1", "multicast"),
            ("fc00::1", "private"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("2002:a00:1::1", "private"),  # 6to4 around 10.0.0.1
            ("fd00:ec2::254", "cloud metadata"),
        ],
    )
    def test_refused_classes(self, address: str, kind: str) -> None:
        """Each non-public address is named by its class (metadata before link-local or private)."""
        assert classify(address) == kind

    @pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
    def test_public_addresses(self, address: str) -> None:
        """Public addresses, including an IPv4-mapped one, are not classified."""
        assert classify(address) is None


class TestCheck:
    """UrlPolicy.check: schemes, resolution, allow-list."""

    @pytest.mark.parametrize(
        "url",
        [
            "file:///etc/passwd",
            "data:text/html,<script>alert(1)</script>",
            "javascript:alert(1)",
            "ftp://example.org/file",
            "gopher://example.org/",
            "example.org/page",
        ],
    )
    async def test_schemes(self, url: str) -> None:
        """Only http and https URLs pass; the refusal says so."""
        with pytest.raises(UrlRefused, match=r"only http and https URLs may be fetched"):
            await UrlPolicy(resolver=resolver({})).check(url)

    async def test_public_name(self) -> None:
        """A name resolving to public addresses passes, with every address recorded."""
        policy = UrlPolicy(resolver=resolver({"example.org": ["93.184.216.34", "2606:2800:220:1::1"]}))
        assert await policy.check("https://Example.org/a?b=1") == ResolvedUrl(
            url="https://example.org/a?b=1",
            scheme="https",
            host="example.org",
            port=443,
            addresses=("93.184.216.34", "2606:2800:220:1::1"),
        )

    @pytest.mark.parametrize(
        ("answer", "kind"),
        [
            (["10.0.0.5"], "private"),
            (["169.254.169.254"], "cloud metadata"),
            (["93.184.216.34", "127.0.0.1"], "loopback"),
        ],
    )
    async def test_checked_after_resolution(self, answer: list[str], kind: str) -> None:
        """A public-looking name is refused if any address it resolves to is not public."""
        policy = UrlPolicy(resolver=resolver({"innocent.example": answer}))
        with pytest.raises(UrlRefused) as caught:
            await policy.check("http://innocent.example/")
        assert f"resolves to {answer[-1]}, which is a {kind} address" in str(caught.value)

    @pytest.mark.parametrize(
        "url", ["http://127.0.0.1:8080/", "http://[::1]/", "http://10.1.2.3/", "http://[::ffff:192.168.0.1]/"]
    )
    async def test_ip_literals_are_not_resolved(self, url: str) -> None:
        """An IP in the URL is classified as is (the resolver is never asked)."""
        with pytest.raises(UrlRefused, match=r"only public addresses may be fetched"):
            await UrlPolicy(resolver=resolver({})).check(url)

    async def test_unresolvable(self) -> None:
        """A name that does not resolve is a ToolError, not a refusal."""
        with pytest.raises(ToolError, match=r"cannot resolve host 'nowhere.invalid'") as caught:
            await UrlPolicy(resolver=resolver({})).check("http://nowhere.invalid/")
        assert not isinstance(caught.value, UrlRefused)

    async def test_allow_list(self) -> None:
        """An allowed host passes whatever it is; a port in the entry limits it to that port."""
        policy = UrlPolicy(
            ["127.0.0.1", "docs.internal:8443", "[::1]:9000"], resolver=resolver({"docs.internal": ["10.0.0.7"]})
        )
        assert (await policy.check("http://127.0.0.1:5000/x")).allowed
        assert (await policy.check("https://docs.internal:8443/")).addresses == ("10.0.0.7",)
        assert (await policy.check("http://[::1]:9000/")).allowed
        for refused in ("https://docs.internal/", "http://[::1]:9001/", "http://127.0.0.2/"):
            with pytest.raises(UrlRefused):
                await policy.check(refused)

    async def test_allow_list_opens_names_not_addresses(self) -> None:
        """Allowing 127.0.0.1 does not open another name that resolves to it."""
        policy = UrlPolicy(["127.0.0.1"], resolver=resolver({"rebind.example": ["127.0.0.1"]}))
        with pytest.raises(UrlRefused, match=r"loopback"):
            await policy.check("http://rebind.example/")

    def test_from_env(self) -> None:
        """ROLEGRAPH_ALLOW_HOSTS adds comma-separated entries to those given."""
        policy = UrlPolicy.from_env(["a.example"], environ={"ROLEGRAPH_ALLOW_HOSTS": " 127.0.0.1:8000, ,[::1] "})
        assert policy.allow_hosts == ("a.example", "127.0.0.1:8000", "[::1]")
        assert policy.is_allowed_host("127.0.0.1", 8000)
        assert not policy.is_allowed_host("127.0.0.1", 8001)
        assert policy.is_allowed_host("::1", 1)

    def test_bad_entry(self) -> None:
        """A malformed allow-list entry is a ValueError naming it."""
        with pytest.raises(ValueError, match=r"'host:port:x'"):
            UrlPolicy(["host:port:x"])


class TestPolicyTransport:
    """PolicyTransport: check every request, connect to the checked address."""

    async def test_pins_the_checked_address(self) -> None:
        """The request goes to the resolved IP; Host header and TLS server name stay the original host."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, text="ok")

        policy = UrlPolicy(resolver=resolver({"example.org": ["93.184.216.34"]}))
        transport = PolicyTransport(policy, httpx.MockTransport(handler))
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            response = await client.get("https://example.org/page")
        assert response.text == "ok"
        assert str(response.url) == "https://example.org/page"
        [sent] = seen
        assert str(sent.url) == "https://93.184.216.34/page"
        assert sent.headers["host"] == "example.org"
        assert sent.extensions["sni_hostname"] == "example.org"

    async def test_refuses_before_sending(self) -> None:
        """A refused URL raises UrlRefused and the inner transport is never called."""
        seen: list[httpx.Request] = []
        transport = PolicyTransport(UrlPolicy(resolver=resolver({})), httpx.MockTransport(seen.append))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, trust_env=False) as client:
            with pytest.raises(UrlRefused, match=r"169.254.169.254 is a cloud metadata address"):
                await client.get("http://169.254.169.254/latest/meta-data/")
        assert seen == []
