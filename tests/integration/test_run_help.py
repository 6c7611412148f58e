"""`dlc run --help`, `dlc train --help` and the README's run section name every option the
code accepts: the option tables are read from the source, so a flag added without its help
line fails here."""
import re

import pytest

from conftest import REPO, run, DLC


def long_options(path, macro):
    """The long option names in a C macro like RUN_LONGOPTS (its continued lines)."""
    text = (REPO / path).read_text()
    m = re.search(r"#define %s\b((?:.*\\\n)*.*)" % macro, text)
    assert m, f"{macro} not found in {path}"
    body = m.group(1).replace("\\\n", " ")
    return re.findall(r'\{\s*"([a-z][a-z-]*)",\s*(?:no|required)_argument', body)


def run_options():
    """(long names, short letters) that `dlc run` and `dlc train` accept (cli/cmd-run.c)."""
    names = long_options("cli/cmd-run.c", "RUN_LONGOPTS")
    names += long_options("cli/cli-gpu.h", "CLI_GPU_LONGOPTS")
    names += long_options("cli/cli.h", "CLI_COMMON_LONGOPTS")
    src = (REPO / "cli/cmd-run.c").read_text()
    shorts = re.search(r'#define RUN_SHORTOPTS "\+?([^"]*)"', src).group(1).replace(":", "")
    assert {"gpus", "device", "driver-root", "publish", "userns", "root"} <= set(names)
    assert "p" in shorts
    return sorted(set(names)), shorts


def mentions_long(text, name):
    return re.search(r"--%s\b(?!-)" % re.escape(name), text) is not None


def mentions_short(text, letter):
    return re.search(r"(^|[\s,(`/])-%s\b(?!-)" % re.escape(letter), text, re.M) is not None


@pytest.mark.parametrize("cmd", ["run", "train"])
def test_help_lists_every_option(cmd):
    assert DLC.exists(), f"{DLC} is not built: run `make`"
    text = run([DLC, cmd, "--help"]).stdout
    names, shorts = run_options()
    if cmd == "train":
        names.append("output")
    missing = [f"--{n}" for n in names if not mentions_long(text, n)]
    missing += [f"-{c}" for c in shorts if not mentions_short(text, c)]
    assert missing == [], f"dlc {cmd} --help lacks {missing}"


def test_readme_run_section_lists_every_option():
    readme = (REPO / "README.md").read_text()
    section = readme.split("<!-- section: run -->")[1].split("<!-- /section: run -->")[0]
    names, shorts = run_options()
    missing = [f"--{n}" for n in names + ["output"] if not mentions_long(section, n)]
    missing += [f"-{c}" for c in shorts if not mentions_short(section, c)]
    assert missing == [], f"README's run section lacks {missing}"
