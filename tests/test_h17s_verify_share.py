"""Issue 17's fresh tester, item 2: `verify` recognises the verified copy of a recording on the clinic's share, and a
recording whose file is gone from this disk is checked through its verified copy there (checksum, signature and the
store's index), each time saying which copy it checked. Both engines (`store_url`); real signed recordings, real
folders."""

from __future__ import annotations

from test_h17s_share_place import _given, linked  # noqa: F401 - the fixture: a store with one linked recording

from main import main
from workstation.recording.format import sidecar_paths
from workstation.recording.share import sync_once
from workstation.store import ClinicStore


def _copied(linked, tmp_path):  # noqa: ANN001, F811
    store_url, _root, local, sid = linked
    share = tmp_path / "share"
    share.mkdir()
    with ClinicStore.open(store_url, training=False) as store:
        assert sync_once(store, share) == (1, [], 0)
        copy = store.shared_path(sid)
        label = store.session_label(sid)
    return store_url, local, copy, label


def test_verify_given_the_share_copy_checks_it_and_says_so(linked, tmp_path, capsys):  # noqa: F811
    store_url, local, copy, label = _copied(linked, tmp_path)
    assert main(["verify", str(copy), "--store", _given(store_url)]) == 0
    out = capsys.readouterr().out
    assert "ok    .sha256: SHA-256 matches; signed by workstation" in out and ", intact" in out
    assert f"ok    store: {label} in " in out and f"the clinic share's verified copy ({copy})" in out
    assert main(["verify", str(local), "--store", _given(store_url)]) == 0
    out = capsys.readouterr().out
    assert f"the recording on this workstation's disk ({local})" in out and "clinic share's" not in out


def test_a_recording_gone_from_this_disk_is_checked_on_the_share(linked, tmp_path, capsys):  # noqa: F811
    store_url, local, copy, label = _copied(linked, tmp_path)
    for f in (local, *sidecar_paths(local)):
        f.unlink()
    assert main(["verify", str(local), "--store", _given(store_url)]) == 0
    out = capsys.readouterr().out
    assert f"note: {local} is not on this disk; checking its verified copy on the clinic's share, {copy}" in out
    assert "ok    .sha256: SHA-256 matches; signed by workstation" in out and ", intact" in out
    assert f"ok    store: {label} in " in out and f"the clinic share's verified copy ({copy})" in out
    data = bytearray(copy.read_bytes())  # the copy changed on the share after it was verified
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    assert main(["verify", str(local), "--store", _given(store_url)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  .sha256: SHA-256 DOES NOT MATCH" in out and "FAIL  store:" in out and "clinic share's" in out
    copy.unlink()  # gone from both places: the sentence it always gave
    assert main(["verify", str(local), "--store", _given(store_url)]) == 2
    err = capsys.readouterr().err
    assert f"{local} is not a file" in err and "Traceback" not in err
