"""Edge TPU discovery on a fake sysfs tree (the sysfs root is the documented parameter)."""

from __future__ import annotations

from pathlib import Path

from coral_runtime.devices import EdgeTpu, device_choices, list_edge_tpus, scan_sysfs


def _usb(root: Path, name: str, vendor: str, product: str) -> None:
    d = root / "bus" / "usb" / "devices" / name
    d.mkdir(parents=True)
    (d / "idVendor").write_text(vendor + "\n")
    (d / "idProduct").write_text(product + "\n")


def test_usb_accelerators_before_and_after_firmware(tmp_path):
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    dev.mkdir()
    _usb(sysfs, "2-1", "1a6e", "089a")   # Global Unichip: before the runtime loads firmware
    _usb(sysfs, "2-2", "18d1", "9302")   # Google: after
    _usb(sysfs, "1-1", "046d", "c52b")   # a mouse
    (sysfs / "bus" / "usb" / "devices" / "usb1").mkdir()  # a hub folder without ids
    found = scan_sysfs(sysfs, dev)
    assert [(t.type, Path(t.path).name, t.device) for t in found] == [
        ("usb", "2-1", "usb:0"), ("usb", "2-2", "usb:1")]


def test_pcie_apex_devices(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    for n in ("apex_1", "apex_0", "apex_10"):
        (dev / n).touch()
    (dev / "null").touch()
    found = list_edge_tpus(sysfs_root=tmp_path / "nosys", dev_root=dev)
    assert [(t.type, Path(t.path).name, t.device) for t in found] == [
        ("pci", "apex_0", "pci:0"), ("pci", "apex_1", "pci:1"), ("pci", "apex_10", "pci:2")]


def test_nothing_found_means_cpu_only(tmp_path):
    assert list_edge_tpus(sysfs_root=tmp_path, dev_root=tmp_path) == []
    assert device_choices([]) == [("cpu", "CPU (LiteRT, no Edge TPU)")]
    choices = device_choices([EdgeTpu("usb", "/sys/x", 0)])
    assert choices[0][0] == "usb:0" and choices[-1][0] == "cpu"
    assert [c[0] for c in choices] == ["usb:0", "usb", "cpu"]
    both = device_choices([EdgeTpu("usb", "/sys/x", 0), EdgeTpu("pci", "/dev/apex_0", 0)])
    assert [c[0] for c in both] == ["usb:0", "pci:0", "usb", "pci", "cpu"]


def test_this_machine_scan_does_not_fail():
    assert isinstance(list_edge_tpus(), list)
