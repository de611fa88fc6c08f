"""MkDocs hooks: pages pull in text the repository keeps once, elsewhere.

- `{{ doc("name") }}` on a line of its own becomes the dbt doc block `name` from any
  `*.md` under dbt_project/models (the text the dbt docs site shows), without its
  `{% docs %}` / `{% enddocs %}` lines.
- `{{ other_docs() }}` becomes every doc block no page has placed, so a new block is
  never missing from the site.
- `{{ dag_doc() }}` becomes the module docstring of dags/customer_marts_nightly.py (the
  DAG's doc_md in the Airflow UI) without its first heading.

An unknown block name is a warning, which fails `mkdocs build --strict`.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "dbt_project" / "models"
DAG_FILE = ROOT / "dags" / "customer_marts_nightly.py"

BLOCK = re.compile(r"{%-?\s*docs\s+(\w+)\s*-?%}\n(.*?)\n?{%-?\s*enddocs\s*-?%}", re.DOTALL)
DOC_CALL = re.compile(r"""^\{\{\s*doc\(\s*["'](\w+)["']\s*\)\s*\}\}[ \t]*$""", re.MULTILINE)
OTHER_DOCS = re.compile(r"^\{\{\s*other_docs\(\)\s*\}\}[ \t]*$", re.MULTILINE)
DAG_DOC = re.compile(r"^\{\{\s*dag_doc\(\)\s*\}\}[ \t]*$", re.MULTILINE)

log = logging.getLogger("mkdocs.hooks.customer_marts")


def doc_blocks() -> dict[str, str]:
    """Every dbt doc block under dbt_project/models, by name, in file order."""
    blocks: dict[str, str] = {}
    for path in sorted(MODELS.rglob("*.md")):
        for name, text in BLOCK.findall(path.read_text(encoding="utf-8")):
            blocks[name] = text.strip()
    return blocks


def dag_doc() -> str:
    """The DAG module's docstring, without its first (title) line."""
    text = ast.get_docstring(ast.parse(DAG_FILE.read_text(encoding="utf-8"))) or ""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def untitled(text: str) -> str:
    """A block without its own title line (dbt's __overview__ has one; the page has its own)."""
    if text.startswith("# "):
        return text.partition("\n")[2].lstrip("\n")
    return text


def placed_names(config) -> set[str]:
    """The doc blocks some page of the site places with {{ doc("name") }}."""
    names: set[str] = set()
    for path in Path(config["docs_dir"]).rglob("*.md"):
        names |= set(DOC_CALL.findall(path.read_text(encoding="utf-8")))
    return names


def on_page_markdown(markdown: str, page, config, files) -> str:
    blocks = doc_blocks()

    def block(match: re.Match) -> str:
        name = match.group(1)
        if name not in blocks:
            log.warning("%s: no dbt doc block named %r under %s", page.file.src_uri, name, MODELS)
            return match.group(0)
        return untitled(blocks[name])

    markdown = DOC_CALL.sub(block, markdown)
    if OTHER_DOCS.search(markdown):
        placed = placed_names(config)
        rest = [untitled(text) for name, text in blocks.items() if name not in placed]
        markdown = OTHER_DOCS.sub(lambda _: "\n\n".join(rest), markdown)
    return DAG_DOC.sub(lambda _: dag_doc(), markdown)
