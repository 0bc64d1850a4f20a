"""WikiText, from the Hub or (for the profiles that download no data: tiny, smollm2-135m) rebuilt offline from real
Wikipedia articles.

The offline corpus is made from the ~100 full English Wikipedia articles that the `gensim` wheel
ships as test data (MediaWiki markup). Markup is stripped and each article is laid out as WikiText
does: ` = Title = `, ` = = Section = = ` and one paragraph per row; lists, captions and tables are
dropped, as WikiText drops them. Whole articles go to train, validation or test.
"""

from __future__ import annotations

import bz2
import json
import re
from pathlib import Path

from helpers.errors import refuse
from helpers.profiles import DataSource
from helpers.workspace import SPLITS

GENSIM_ARTICLES = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
HELD_OUT_ARTICLES = 6  # articles in each of validation and test
_HEADING = re.compile(r"^(=+)\s*(.*?)\s*\1\s*$")
_END_SECTIONS = {"see also", "references", "external links", "notes", "further reading", "bibliography", "sources"}
_MIN_WORDS = 12


def _article_rows(title: str, markup: str) -> list[str]:
    """One article as WikiText rows: a title, section headings and paragraphs of prose."""
    from gensim.corpora.wikicorpus import filter_wiki

    rows = [f" = {title} = "]
    for line in filter_wiki(markup).splitlines():
        line = line.replace("'''", "").replace("''", "").strip()
        heading = _HEADING.match(line)
        if heading:
            if heading.group(2).lower() in _END_SECTIONS:
                break
            marks = " ".join("=" * len(heading.group(1)))
            rows.append(f" {marks} {heading.group(2)} {marks} ")
        elif len(line.split()) >= _MIN_WORDS and line[-1] in '.!?"':
            rows.append(f" {line} ")
    # a heading only counts if prose follows it
    return [row for i, row in enumerate(rows) if not row.startswith(" = =") or (i + 1 < len(rows) and not rows[i + 1].startswith(" = "))]


def wikipedia_articles() -> list[list[str]]:
    """The gensim test-data articles with enough prose, each as a list of WikiText rows."""
    import gensim
    from gensim.corpora.wikicorpus import extract_pages

    dump = Path(gensim.__file__).parent / "test" / "test_data" / GENSIM_ARTICLES
    articles = []
    with bz2.open(dump) as stream:
        for title, markup, _page_id in extract_pages(stream, filter_namespaces=("0",)):
            if markup.lower().startswith("#redirect"):
                continue
            rows = _article_rows(title, markup)
            if len(rows) > 3:
                articles.append(rows)
    return articles


def build_offline_wikitext(out_dir: Path) -> None:
    """Write `train.txt`, `validation.txt`, `test.txt` (WikiText rows, blank rows between) and `splits.json`."""
    articles = wikipedia_articles()
    held_out = {"validation": articles[1::16][:HELD_OUT_ARTICLES], "test": articles[9::16][:HELD_OUT_ARTICLES]}
    chosen = {id(a) for split in held_out.values() for a in split}
    splits = {"train": [a for a in articles if id(a) not in chosen], **held_out}
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, split_articles in splits.items():
        rows = [row for article in split_articles for row in ("", *article)]
        (out_dir / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    counts = {split: {"articles": len(a), "rows": sum(len(x) for x in a)} for split, a in splits.items()}
    (out_dir / "splits.json").write_text(json.dumps({"source": f"gensim test data: {GENSIM_ARTICLES}", **counts}, indent=2))


def is_corpus_dir(path: Path) -> bool:
    return all((path / f"{split}.txt").is_file() for split in SPLITS) and (path / "splits.json").is_file()


def load_wikitext(data: DataSource, corpus_dir: Path | None = None):
    """WikiText as a `datasets.DatasetDict` (train / validation / test, one `text` row per line)."""
    import datasets

    if data.hf_dataset:
        path, name = data.hf_dataset
        try:
            return datasets.load_dataset(path, name)
        except Exception as error:  # the Hub is unreachable, or the name is wrong
            raise refuse(
                "data source",
                f"could not load {path} ({name}) with datasets: {error}",
                "check the network / HF_TOKEN, or download it once where the Hub is reachable",
            ) from error
    if corpus_dir is None or not is_corpus_dir(corpus_dir):
        raise refuse(
            "data source",
            f"the offline WikiText corpus is missing from {corpus_dir}",
            "run the 'Get the teacher' step of notebook 01 first (it builds the corpus)",
        )
    files = {split: str(corpus_dir / f"{split}.txt") for split in SPLITS}
    return datasets.load_dataset("text", data_files=files, keep_linebreaks=True)
