"""The manual (MkDocs, docs/) builds without a warning, its links resolve, and the
texts it shares with dbt and the DAG are included, not copied."""

from __future__ import annotations

import ast
import html
import re
import subprocess
import sys

import pytest

from customer_marts.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "docs"))
import hooks  # noqa: E402  (docs/hooks.py, the MkDocs hooks under test)

# Links Markdown writes as [text](target), skipping images' and code's look-alikes.
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`mkdocs build --strict` into a temporary folder: its output and the folder."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    return result, out


def plain_html(path) -> str:
    """A page's text without tags or whitespace (inline tags split no words)."""
    text = re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8"))
    return "".join(html.unescape(text).split())


def plain_markdown(text: str) -> str:
    """Markdown's text as plain_html gives it: no markup, no whitespace."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    return "".join(re.sub(r"[*`]", "", text).split())


def test_the_site_builds_strict_with_no_warning(site):
    result, out = site
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    assert (out / "index.html").exists()
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for marker in ("{{ doc(", "{{ other_docs", "{{ dag_doc", "--8<--"):
            assert marker not in text, f"{page.name}: {marker} left unresolved"


def test_every_dbt_doc_block_is_on_the_site_as_dbt_has_it(site):
    """The metric definitions live once, in dbt's doc blocks: the metrics page shows each
    one that no other page places."""
    _, out = site
    metrics = plain_html(out / "metrics.html")
    pages = "".join(plain_html(page) for page in sorted(out.glob("*.html")))
    blocks = hooks.doc_blocks()
    assert {"completed_order", "period_retention", "nps", "clv_12m"} <= set(blocks)
    for name, text in blocks.items():
        plain = plain_markdown(hooks.untitled(text))
        middle = plain[len(plain) // 3 : len(plain) // 3 + 40]
        assert middle in pages, f"doc block {name!r} is on no page"
        if not name.startswith("__"):
            assert middle in metrics, f"doc block {name!r} is not on docs/metrics.md"


def test_the_operating_chapter_shows_the_dags_doc_md(site):
    """The DAG's doc_md (its module docstring) is the operating chapter's contract."""
    _, out = site
    page = plain_html(out / "operating.html")
    dag_file = PROJECT_ROOT / "dags" / "customer_marts_nightly.py"
    docstring = ast.get_docstring(ast.parse(dag_file.read_text(encoding="utf-8")))
    paragraphs = [p for p in docstring.split("\n\n")[1:] if not p.startswith("|")]
    assert len(paragraphs) >= 5
    for paragraph in paragraphs:
        plain = plain_markdown(paragraph)
        assert plain[:60] in page, plain[:60]
    assert "dagRuns/{run_id}/clear" in page  # a recipe the docstring names


def test_readme_links_resolve():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    slugs = {
        re.sub(r"[^a-z0-9 -]", "", line[3:].strip().lower()).replace(" ", "-")
        for line in readme.splitlines()
        if line.startswith("## ")
    }
    targets = LINK.findall(readme)
    assert any(t.startswith("docs/") for t in targets)
    for target in targets:
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        if path:
            assert (PROJECT_ROOT / path).exists(), f"README links to missing {path}"
        else:
            assert anchor in slugs, f"README links to missing heading #{anchor}"


def test_paths_the_manual_names_exist():
    """Every repository path the manual or the README writes in backticks exists."""
    tops = ("customer_marts/", "dags/", "dbt_project/", "expectations/", "tests/", "scripts/")
    tops += ("bi/", "tools/", "bench/", "config/", "docs/", ".ci/")
    files = {name for name, _ in tracked_text_files()} | set(
        subprocess.run(
            ["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    folders = {
        name.rsplit("/", n)[0] + "/" for name in files for n in range(1, name.count("/") + 1)
    }
    missing = []
    for page in [*sorted((PROJECT_ROOT / "docs").glob("*.md")), PROJECT_ROOT / "README.md"]:
        for token in re.findall(r"`([^`\s]+)`", page.read_text(encoding="utf-8")):
            path = token.split("::")[0].rstrip(",.:")
            if path.startswith(tops) and not re.search(r"[<*$]", path):
                if path not in files and path.rstrip("/") + "/" not in folders:
                    missing.append(f"{page.name}: {path}")
    assert missing == []


def test_tests_the_manual_names_exist():
    """`test_file.py::test_name` in the manual (the fault tests' table) names a real test."""
    tests = {path.name: path for path in (PROJECT_ROOT / "tests").rglob("test_*.py")}
    tests |= {str(path.relative_to(PROJECT_ROOT)): path for path in tests.values()}
    named = 0
    missing = []
    for page in sorted((PROJECT_ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for cell in re.findall(r"`([\w/]*test_\w+\.py)::([\w*]+)`((?:, `::[\w*]+`)*)", text):
            file, first, more = cell
            for name in [first, *re.findall(r"::([\w*]+)", more)]:
                named += 1
                source = tests[file].read_text(encoding="utf-8") if file in tests else ""
                pattern = r"def " + re.escape(name).replace(r"\*", r"\w*") + r"\b"
                if not re.search(pattern, source):
                    missing.append(f"{page.name}: {file}::{name}")
    assert named >= 10
    assert missing == []


def test_no_file_points_outside_the_repository():
    """Nothing refers to the shared folder beside the repository or its metrics file."""
    outside = re.compile("|".join([r"\.\./shared", "METRICS" + r"\.md", "/work/" + "shared"]))
    found = [
        f"{name}:{number}"
        for name, text in tracked_text_files()
        for number, line in enumerate(text.splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []


def tracked_text_files():
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in names:
        path = PROJECT_ROOT / name
        if path.is_file() and path.suffix not in {".png", ".duckdb", ".parquet", ".gz"}:
            try:
                yield name, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def headings(text: str) -> set[str]:
    return {line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")}


def test_references_to_the_manual_name_a_page_and_section_it_has():
    """Code, configuration and messages cite a page of the manual (docs/<page>.md or
    the README), often with one of its sections in quotes: each exists."""
    cite = re.compile(r"""(docs/[\w-]+\.md|README)(?:'s)?,?\s+(?:#\s*)?["']([A-Z][^"'\n]*)["']""")
    readme = headings((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    broken = []
    for name, text in tracked_text_files():
        for page in set(re.findall(r"docs/[\w-]+\.md", text)):
            if not (PROJECT_ROOT / page).exists():
                broken.append(f"{name}: {page} does not exist")
        for page, section in cite.findall(text):
            path = PROJECT_ROOT / page
            known = (
                readme
                if page == "README"
                else headings(path.read_text())
                if path.exists()
                else set()
            )
            if section not in known:
                broken.append(f"{name}: {page} has no section {section!r}")
    assert broken == []
