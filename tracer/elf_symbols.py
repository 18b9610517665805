"""Symbols and load segments of an ELF file, read with the standard library.

Attach mode has to find ``_PyRuntime`` in a process it did not start, where no code of ours runs
inside: CPython exports it as a data symbol (in libpython, or in the ``python`` executable of a
static build such as Debian's, whose ``strip`` keeps the dynamic symbol table). No ELF package is
needed for that much, and none is installed with the target's interpreter.

Only 64-bit little-endian files are read: the one layout the GIL search behind it was checked on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 62
ET_EXEC, ET_DYN = 2, 3
PT_LOAD = 1
SHT_SYMTAB, SHT_DYNSYM = 2, 11
SHN_UNDEF = 0

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_SYMBOL = struct.Struct("<IBBHQQ")
# A symbol table larger than this is not one a compiler wrote for a Python build (libpython's full
# .symtab is ~1 MB): refuse rather than read a damaged file's idea of a size into memory.
_MAX_TABLE_BYTES = 256 << 20


class ElfError(ValueError):
    """The file is not an ELF file this reader understands; the message says how."""


@dataclass(frozen=True)
class Segment:
    """One ``PT_LOAD`` program header: file bytes [offset, offset+filesz) at vaddr."""

    offset: int
    vaddr: int
    filesz: int
    memsz: int


@dataclass(frozen=True)
class Section:
    name: str
    kind: int
    addr: int
    offset: int
    size: int
    link: int


@dataclass(frozen=True)
class Symbol:
    name: str
    value: int  # the link-time address: add the load bias for the address in a process
    size: int


@dataclass(frozen=True)
class ElfImage:
    path: str
    elf_type: int  # ET_EXEC (fixed addresses) or ET_DYN (shared object or PIE)
    machine: int
    segments: tuple[Segment, ...]
    sections: tuple[Section, ...]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def load_bias(self, mapped_at: int, file_offset: int) -> int:
        """What to add to a link-time address, given that the page at ``file_offset`` of the file
        is mapped at ``mapped_at`` (one line of ``/proc/PID/maps``)."""
        for segment in self.segments:
            page_offset = segment.offset & ~0xFFF
            if page_offset <= file_offset < segment.offset + max(segment.filesz, 1):
                return mapped_at - ((segment.vaddr & ~0xFFF) + (file_offset - page_offset))
        raise ElfError(f"{self.path}: no PT_LOAD segment covers file offset {file_offset:#x}")


def read_elf(path: str | Path) -> ElfImage:
    """Header, load segments and section headers of ``path``."""
    with open(path, "rb") as handle:
        return _read_image(handle, str(path))


def find_symbols(path: str | Path, names: set[str]) -> dict[str, Symbol]:
    """The defined symbols among ``names``: from ``.dynsym`` first (what the dynamic linker sees,
    kept by ``strip``), then ``.symtab`` for any still missing. Absent names are left out."""
    with open(path, "rb") as handle:
        image = _read_image(handle, str(path))
        found: dict[str, Symbol] = {}
        for kind in (SHT_DYNSYM, SHT_SYMTAB):
            missing = names - set(found)
            if not missing:
                break
            for table in (s for s in image.sections if s.kind == kind):
                if table.link >= len(image.sections):
                    raise ElfError(f"{path}: symbol table {table.name} links to no string table")
                strings = image.sections[table.link]
                found.update(_symbols_in(handle, str(path), table, strings, missing))
    return found


def _read_image(handle: BinaryIO, path: str) -> ElfImage:
    header = handle.read(_HEADER.size)
    if len(header) < _HEADER.size or header[:4] != ELF_MAGIC:
        raise ElfError(f"{path} is not an ELF file")
    if header[4] != 2 or header[5] != 1:
        raise ElfError(f"{path} is not a 64-bit little-endian ELF file")
    (_, e_type, machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = _HEADER.unpack(header)
    segments: list[Segment] = []
    if phnum and phentsize < _PROGRAM_HEADER.size:
        raise ElfError(f"{path}: program headers of {phentsize} bytes")
    for index in range(phnum):
        handle.seek(phoff + index * phentsize)
        raw = _exact(handle, _PROGRAM_HEADER.size, path, "program header")
        p_type, _, offset, vaddr, _, filesz, memsz, _ = _PROGRAM_HEADER.unpack(raw)
        if p_type == PT_LOAD:
            segments.append(Segment(offset, vaddr, filesz, memsz))
    sections: list[Section] = []
    if shnum:
        if shentsize < _SECTION_HEADER.size:
            raise ElfError(f"{path}: section headers of {shentsize} bytes")
        rows = []
        for index in range(shnum):
            handle.seek(shoff + index * shentsize)
            rows.append(_SECTION_HEADER.unpack(_exact(handle, _SECTION_HEADER.size, path,
                                                      "section header")))
        names = b""
        if shstrndx < len(rows):
            names = _read_at(handle, rows[shstrndx][4], rows[shstrndx][5], path, "section names")
        for sh_name, sh_type, _, addr, offset, size, link, _, _, _ in rows:
            sections.append(Section(_c_string(names, sh_name), sh_type, addr, offset, size, link))
    return ElfImage(path, e_type, machine, tuple(segments), tuple(sections))


def _symbols_in(handle: BinaryIO, path: str, table: Section, strings: Section,
                wanted: set[str]) -> dict[str, Symbol]:
    raw = _read_at(handle, table.offset, table.size, path, table.name)
    names = _read_at(handle, strings.offset, strings.size, path, strings.name)
    encoded = {name.encode(): name for name in wanted}
    found: dict[str, Symbol] = {}
    for st_name, _, _, shndx, value, size in _SYMBOL.iter_unpack(
            raw[: len(raw) - len(raw) % _SYMBOL.size]):
        if shndx == SHN_UNDEF:
            continue
        name = encoded.get(_c_bytes(names, st_name))
        if name is not None and name not in found:
            found[name] = Symbol(name, value, size)
    return found


def _read_at(handle: BinaryIO, offset: int, size: int, path: str, what: str) -> bytes:
    if size > _MAX_TABLE_BYTES:
        raise ElfError(f"{path}: {what} claims {size} bytes")
    handle.seek(offset)
    return _exact(handle, size, path, what)


def _exact(handle: BinaryIO, size: int, path: str, what: str) -> bytes:
    raw = handle.read(size)
    if len(raw) != size:
        raise ElfError(f"{path}: {what} runs past the end of the file")
    return raw


def _c_bytes(table: bytes, offset: int) -> bytes:
    end = table.find(b"\0", offset)
    return table[offset:end] if end >= 0 else table[offset:]


def _c_string(table: bytes, offset: int) -> str:
    return _c_bytes(table, offset).decode("ascii", errors="replace")
