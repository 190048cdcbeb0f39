"""How much scratch space and time a workbook's rows will need, from its zip directory alone.

The parsed rows travel from the parser process as an Arrow file, all cells as
text: its size, not the workbook's, decides whether ``/dev/shm`` or Lambda's
``/tmp`` can hold it. A compressed workbook says little (a 13 MB xlsx took
over 500 MB); the zip directory says more without inflating anything: the
inflated size of the sheet XML, and the shared-strings header (``count``
references to ``uniqueCount`` strings), whose strings the Arrow file repeats at
every reference. Only the directory and the first few KB of the shared-strings
part are read, so a zip bomb costs nothing here, and the estimate works on a
local file or on an S3 object read by ranges alike.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

# Measured (README, "Sizing"): the Arrow file of inline-string and numeric cells is
# 0.27-0.29x the sheet XML it came from; 0.35 leaves room for wider text.
ARROW_PER_SHEET_XML = 0.35
# Per shared-string reference: its 4-byte offset and validity, beyond the text.
ARROW_PER_REFERENCE = 8
# The XML around each shared string: <si><t>...</t></si>.
_SST_MARKUP = 16
# Measured: about 25 MB/s of sheet XML parsed, validated and loaded here; a Lambda
# with a fraction of a core is slower, so the estimate assumes half of that.
SHEET_XML_PER_SECOND = 12 * 2**20
FIXED_SECONDS = 5.0
_SST_HEAD = 4096
_COUNT = re.compile(rb'\bcount="(\d+)"')
_UNIQUE = re.compile(rb'\buniqueCount="(\d+)"')


@dataclass(frozen=True)
class ScratchEstimate:
    arrow_bytes: int  # the parsed rows' Arrow files, all sheets together
    seconds: float  # parse, validate and load

    def scratch_bytes(self, download_bytes: int) -> int:
        """Everything on disk at the peak: the downloaded file and the rows beside it."""
        return download_bytes + self.arrow_bytes


def estimate(source: IO[bytes], size: int, is_zip: bool) -> ScratchEstimate:
    """The estimate for a workbook read from ``source`` (seekable), ``size`` bytes long.

    Anything that is not a readable zip is costed as its own size, which is what a
    binary .xls or a CSV amounts to as text; the guards refuse it later if damaged.
    """
    if not is_zip:
        return unzipped(size)
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
            sheets = sum(m.file_size for m in members if _is_sheet(m.filename))
            strings = next((m for m in members if _is_shared_strings(m.filename)), None)
            shared = 0 if strings is None else _shared_string_bytes(archive, strings, sheets)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, ValueError, EOFError):
        return unzipped(size)
    arrow = int(sheets * ARROW_PER_SHEET_XML) + shared
    return ScratchEstimate(arrow, FIXED_SECONDS + (sheets + shared) / SHEET_XML_PER_SECOND)


def unzipped(size: int) -> ScratchEstimate:
    """A file that is no zip (.xls, CSV): costed as its own size, about what it is as text."""
    return ScratchEstimate(size, FIXED_SECONDS + size / SHEET_XML_PER_SECOND)


def _is_sheet(name: str) -> bool:
    name = name.replace("\\", "/").lower()
    return (name.startswith("xl/worksheets/") and name.endswith(".xml")) or name == "content.xml"


def _is_shared_strings(name: str) -> bool:
    return name.replace("\\", "/").lower() == "xl/sharedstrings.xml"


def _shared_string_bytes(archive: zipfile.ZipFile, part: zipfile.ZipInfo, sheets: int) -> int:
    """Bytes the shared strings take once repeated at every reference, as Arrow holds them."""
    with archive.open(part) as stream:
        head = stream.read(_SST_HEAD)
    unique_match, count_match = _UNIQUE.search(head), _COUNT.search(head)
    unique = int(unique_match.group(1)) if unique_match else 0
    # Without a count, every cell of the sheets may be a reference: a cell of a
    # shared string takes at least ~20 bytes of sheet XML (<c r="A1" t="s"><v>0</v></c>).
    references = int(count_match.group(1)) if count_match else sheets // 20
    average = max(1.0, part.file_size / unique - _SST_MARKUP) if unique else part.file_size
    return int(references * (average + ARROW_PER_REFERENCE))
