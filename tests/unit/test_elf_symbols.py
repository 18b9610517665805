"""The ELF symbol reader on synthetic files: which table wins, what is skipped, load bias, and
the files it must refuse rather than misread."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tracer.elf_symbols import (
    EM_X86_64,
    ET_DYN,
    ET_EXEC,
    SHT_DYNSYM,
    SHT_SYMTAB,
    ElfError,
    Segment,
    find_symbols,
    read_elf,
)

SHT_STRTAB = 3
Sym = tuple[str, int, int, int]  # name, value, size, section index (0: undefined)


def _strtab(names: list[str]) -> tuple[bytes, dict[str, int]]:
    blob, at = b"\0", {}
    for name in names:
        at[name] = len(blob)
        blob += name.encode() + b"\0"
    return blob, at


def _symtab(symbols: list[Sym]) -> tuple[bytes, bytes]:
    strings, at = _strtab([s[0] for s in symbols])
    table = bytes(24)  # entry 0 is the null symbol
    for name, value, size, shndx in symbols:
        table += struct.pack("<IBBHQQ", at[name], 0x11, 0, shndx, value, size)  # GLOBAL OBJECT
    return table, strings


def build_elf(dynsym: list[Sym], symtab: list[Sym] | None = None, e_type: int = ET_DYN,
              loads: tuple[tuple[int, int, int, int], ...] = ((0, 0, 0x1000, 0x1000),),
              elf_class: int = 2) -> bytes:
    """A 64-bit little-endian ELF file with PT_LOAD segments and symbol tables, nothing else."""
    sections: list[tuple[str, int, bytes, int]] = []  # name, type, data, its strings' index
    table, strings = _symtab(dynsym)
    sections += [(".dynstr", SHT_STRTAB, strings, 0), (".dynsym", SHT_DYNSYM, table, 0)]
    if symtab is not None:
        table, strings = _symtab(symtab)
        sections += [(".strtab", SHT_STRTAB, strings, 0), (".symtab", SHT_SYMTAB, table, 2)]
    names, name_at = _strtab([s[0] for s in sections] + [".shstrtab"])
    sections.append((".shstrtab", SHT_STRTAB, names, 0))
    phoff = 64
    data_at = phoff + 56 * len(loads)
    body, offsets = b"", []
    for _, _, data, _ in sections:
        offsets.append(data_at + len(body))
        body += data + bytes(-len(data) % 8)
    shoff = data_at + len(body)
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9)
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, e_type, EM_X86_64, 1, 0, phoff, shoff, 0,
                         64, 56, len(loads), 64, len(sections) + 1, len(sections))
    phdrs = b"".join(struct.pack("<IIQQQQQQ", 1, 6, off, vaddr, vaddr, filesz, memsz, 0x1000)
                     for off, vaddr, filesz, memsz in loads)
    shdrs = bytes(64)  # section 0 is the null section; real ones are numbered from 1
    for (name, kind, data, link), offset in zip(sections, offsets):
        shdrs += struct.pack("<IIQQQQIIQQ", name_at[name], kind, 0, 0, offset, len(data),
                             link + 1 if kind in (SHT_DYNSYM, SHT_SYMTAB) else 0, 0, 8,
                             24 if kind != SHT_STRTAB else 0)
    return header + phdrs + body + shdrs


def _write(tmp_path: Path, blob: bytes) -> Path:
    path = tmp_path / "libfake.so"
    path.write_bytes(blob)
    return path


def test_finds_a_data_symbol_in_the_dynamic_table(tmp_path: Path) -> None:
    path = _write(tmp_path, build_elf([("Py_Version", 0x3871B0, 8, 14),
                                       ("_PyRuntime", 0x54E540, 0x28B20, 24)]))
    found = find_symbols(path, {"_PyRuntime", "Py_Version", "absent"})
    assert set(found) == {"_PyRuntime", "Py_Version"}
    assert (found["_PyRuntime"].value, found["_PyRuntime"].size) == (0x54E540, 0x28B20)


def test_dynamic_table_wins_and_symtab_fills_the_rest(tmp_path: Path) -> None:
    path = _write(tmp_path, build_elf([("_PyRuntime", 0x1000, 64, 5)],
                                      symtab=[("_PyRuntime", 0x2000, 64, 5),
                                              ("take_gil", 0x3000, 200, 7)]))
    found = find_symbols(path, {"_PyRuntime", "take_gil"})
    assert found["_PyRuntime"].value == 0x1000
    assert found["take_gil"].value == 0x3000


def test_undefined_symbols_are_not_found(tmp_path: Path) -> None:
    # A library that merely imports _PyRuntime (an extension module) does not hold it.
    path = _write(tmp_path, build_elf([("_PyRuntime", 0, 0, 0)]))
    assert find_symbols(path, {"_PyRuntime"}) == {}


def test_segments_and_type(tmp_path: Path) -> None:
    loads = ((0, 0, 0x2000, 0x2000), (0x36ECC0, 0x36FCC0, 0x300, 0x6000))
    image = read_elf(_write(tmp_path, build_elf([], e_type=ET_EXEC, loads=loads)))
    assert image.elf_type == ET_EXEC and image.machine == EM_X86_64
    assert image.segments == (Segment(0, 0, 0x2000, 0x2000),
                              Segment(0x36ECC0, 0x36FCC0, 0x300, 0x6000))
    assert image.section(".dynsym") is not None and image.section(".bss") is None


def test_load_bias_from_any_mapped_page(tmp_path: Path) -> None:
    # libpython's text at offset 0 and its data segment one page further in memory than in the
    # file (as the pyenv builds have it): both mappings must give the same bias.
    loads = ((0, 0, 0x36E000, 0x36E000), (0x36ECC0, 0x36FCC0, 0x3000, 0x9000))
    image = read_elf(_write(tmp_path, build_elf([], loads=loads)))
    base = 0x7F4BCE9C0000
    assert image.load_bias(base, 0) == base
    assert image.load_bias(base + 0x36F000, 0x36E000) == base
    with pytest.raises(ElfError, match="no PT_LOAD"):
        image.load_bias(base, 0x900000)


@pytest.mark.parametrize(("blob", "message"), [
    (b"#!/bin/sh\necho not elf\n" + bytes(64), "not an ELF file"),
    (b"\x7fELF", "not an ELF file"),
    (build_elf([], elf_class=1), "64-bit little-endian"),
])
def test_refuses_what_it_cannot_read(tmp_path: Path, blob: bytes, message: str) -> None:
    with pytest.raises(ElfError, match=message):
        find_symbols(_write(tmp_path, blob), {"_PyRuntime"})


def test_refuses_a_truncated_file(tmp_path: Path) -> None:
    blob = build_elf([("_PyRuntime", 0x1000, 64, 5)])
    with pytest.raises(ElfError, match="past the end"):
        find_symbols(_write(tmp_path, blob[:-40]), {"_PyRuntime"})
