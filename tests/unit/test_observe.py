import pytest

from conformance.core.observe import ProbeError, parse_id, parse_probe

LOG = """2026-11-27T11:49:52.739515850Z stdout F SGP-BEGIN
2026-11-27T11:49:52.739515850Z stdout F SGP-ID uid=1000(user) gid=3000 groups=3000,4000,50000(grp)
2026-11-27T11:49:52.739515850Z stdout F SGP-STATUS Uid: 1000 1000 1000 1000
2026-11-27T11:49:52.739515850Z stdout F SGP-STATUS Gid: 3000 3000 3000 3000
2026-11-27T11:49:52.739515850Z stdout F SGP-STATUS Groups: 3000 4000 50000
2026-11-27T11:49:52.739515850Z stdout F SGP-END
"""


def test_parse_id_with_names_and_without_groups() -> None:
    assert parse_id("uid=1000(u) gid=3000 groups=3000,4000(x)") == (1000, 3000, [3000, 4000])
    assert parse_id("uid=0(root) gid=0(root)") == (0, 0, [])


def test_parse_probe_from_cri_log() -> None:
    ident = parse_probe(LOG)
    assert (ident.id_uid, ident.id_gid, ident.id_groups) == (1000, 3000, [3000, 4000, 50000])
    assert ident.status_uid == [1000] * 4 and ident.status_groups == [3000, 4000, 50000]


def test_parse_probe_empty_groups_line() -> None:
    text = "SGP-BEGIN\nSGP-ID uid=0(root) gid=0(root) groups=0(root)\nSGP-STATUS Uid: 0 0 0 0\n" \
           "SGP-STATUS Gid: 0 0 0 0\nSGP-STATUS Groups:\nSGP-END\n"
    assert parse_probe(text).status_groups == []


def test_incomplete_probe_is_an_error() -> None:
    with pytest.raises(ProbeError):
        parse_probe("SGP-BEGIN\nSGP-ID uid=0 gid=0\n")
    with pytest.raises(ProbeError):
        parse_id("no identity here")
