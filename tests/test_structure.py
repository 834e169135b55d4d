"""The tree keeps one direction: the library, the CLI and the evaluation know codecs only
through the registry, so a new codec is its package and one registry entry."""

import re
from pathlib import Path

import codec

ROOT = Path(__file__).resolve().parents[1]
GENERIC = [ROOT / "codec" / "api.py", *sorted((ROOT / "cli").glob("*.py")),
           *sorted((ROOT / "codec" / "evaluation").glob("*.py"))]


def test_generic_layers_name_no_codec() -> None:
    names = [s.name for s in codec.codecs()]
    families = {n.split("-")[0] for n in names}  # "pc" of "pc-mnist", a package name
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, sorted(set(names) | families))) + r")(?![\w])")
    found = []
    for path in GENERIC:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) or re.search(r"\.kind\s*[!=]=", line):
                found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, "codec knowledge outside the codec packages:\n" + "\n".join(found)


def test_the_structure_test_sees_the_files_it_guards() -> None:
    assert len(GENERIC) >= 5 and all(p.is_file() for p in GENERIC)
    names = [s.name for s in codec.codecs()]
    assert len(names) >= 4
