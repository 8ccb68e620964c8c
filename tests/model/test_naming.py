"""Container names, suffixes, hostnames and labels (CONTAINAI.md §3.1-3.3, issue 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from containai import __version__
from containai._defaults import (
    LABEL_DATA_VOLUME,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_OWNER,
    LABEL_VERSION,
    LABEL_WORKSPACE,
)
from containai.fsm._errors import NameCollision
from containai.model import (
    Overrides,
    compose_name,
    container_name,
    git_branch,
    reset_volume_name,
    resolve_workspace,
    sanitize_hostname,
    suffixed,
    validate_volume,
    workspace_labels,
)

NAME = re.compile(r"^(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])$")
HOSTNAME = re.compile(r"^(?:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])$")


class TestComposeName:
    @pytest.mark.parametrize(
        ("repo", "branch", "expected"),
        [
            # issue 5's examples
            ("MyRepo", "feature/One", "myrepo-one"),
            ("MyRepo", "detached", "myrepo-detached"),
            ("NoGit", "nogit", "nogit-nogit"),
            ("___", "___", "repo-branch"),
            ("my-app", "feat/ui/button", "my-app-button"),
            # dots and underscores are dropped, not converted
            ("my.app", "v1.2", "myapp-v12"),
            ("my_app", "fix_bug", "myapp-fixbug"),
            # unicode: non-ASCII letters are dropped; nothing left falls back
            ("café", "main", "caf-main"),
            ("日本語", "ブランチ", "repo-branch"),
            ("--a--b--", "--", "a-b-branch"),
            ("", "", "repo-branch"),
            # the longer part loses characters first, the repo on a tie
            ("a" * 40, "b" * 40, "a" * 11 + "-" + "b" * 12),
            ("short", "x" * 40, "short-" + "x" * 18),
            ("r" * 40, "main", "r" * 19 + "-main"),
            # a cut that ends in '-' is stripped
            ("a" * 18 + "-bbbb", "main", "a" * 18 + "-main"),
        ],
    )
    def test_compose_name_examples(self, repo: str, branch: str, expected: str) -> None:
        assert compose_name(repo, branch) == expected

    @given(st.text(), st.text())
    def test_compose_name_is_always_a_valid_short_name(self, repo: str, branch: str) -> None:
        name = compose_name(repo, branch)
        assert len(name) <= 24
        assert NAME.match(name), name
        assert "--" not in name


class TestGitBranch:
    def test_git_branch_on_a_branch_uses_its_leaf(self, repo: Path, git) -> None:
        git(repo, "checkout", "-q", "-b", "feature/One")
        assert git_branch(repo) == "feature/One"
        assert container_name(repo) == "myrepo-one"

    def test_git_branch_detached_head(self, repo: Path, git) -> None:
        git(repo, "checkout", "-q", "--detach")
        assert git_branch(repo) == "detached"
        assert container_name(repo) == "myrepo-detached"

    def test_git_branch_outside_git_is_nogit(self, tmp_path: Path) -> None:
        ws = tmp_path / "NoGit"
        ws.mkdir()
        assert git_branch(ws) == "nogit"
        assert container_name(ws) == "nogit-nogit"

    def test_git_branch_in_a_repository_without_commits(self, tmp_path: Path, git) -> None:
        ws = tmp_path / "fresh"
        ws.mkdir()
        git(ws, "init", "-q")
        assert container_name(ws) == "fresh-main"

    def test_git_branch_in_a_linked_worktree(self, repo: Path, git, tmp_path: Path) -> None:
        worktree = tmp_path / "wt"
        git(repo, "worktree", "add", "-q", "-b", "topic/leaf", str(worktree))
        assert (worktree / ".git").is_file()
        assert git_branch(worktree) == "topic/leaf"

    def test_git_branch_in_a_subdirectory_of_a_repository(self, repo: Path) -> None:
        sub = repo / "pkg"
        sub.mkdir()
        assert container_name(sub) == "pkg-main"


class TestSuffixed:
    def test_suffixed_appends_the_number(self) -> None:
        assert suffixed("myrepo-one", 2) == "myrepo-one-2"
        assert suffixed("myrepo-one", 99) == "myrepo-one-99"

    def test_suffixed_first_is_the_base(self) -> None:
        assert suffixed("myrepo-one", 1) == "myrepo-one"

    def test_suffixed_shortens_a_long_base_to_keep_24(self) -> None:
        base = "a" * 12 + "-" + "b" * 11
        assert suffixed(base, 2) == "a" * 12 + "-" + "b" * 9 + "-2"
        assert len(suffixed(base, 42)) == 24

    def test_suffixed_strips_a_trailing_dash_at_the_cut(self) -> None:
        assert suffixed("a" * 20 + "-bbb", 10) == "a" * 20 + "-10"

    def test_suffixed_beyond_99_is_a_name_collision(self) -> None:
        with pytest.raises(NameCollision, match="99"):
            suffixed("myrepo-one", 100)

    def test_suffixed_rejects_zero(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            suffixed("x", 0)

    @given(st.text(), st.text(), st.integers(min_value=1, max_value=99))
    def test_suffixed_names_stay_valid(self, repo: str, branch: str, n: int) -> None:
        name = suffixed(compose_name(repo, branch), n)
        assert len(name) <= 24
        assert NAME.match(name), name


class TestSanitizeHostname:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            # the reference's table (CONTAINAI.md §3.3) and architecture doc
            ("my_workspace", "my-workspace"),
            ("MyProject", "myproject"),
            ("app@v2.0", "appv20"),
            ("test--app", "test-app"),
            ("app--test", "app-test"),
            ("test__app", "test-app"),
            ("-app-", "app"),
            ("___", "container"),
            ("x" * 70, "x" * 63),
            ("my_workspace-main", "my-workspace-main"),
            ("MyProject-Feature", "myproject-feature"),
            # edge cases
            ("", "container"),
            ("my.host.name", "myhostname"),
            ("Ünïcödé", "ncd"),
            ("日本語", "container"),
            ("a" * 62 + "_b", "a" * 62),
            ("UPPER_lower_123", "upper-lower-123"),
        ],
    )
    def test_sanitize_hostname_examples(self, name: str, expected: str) -> None:
        assert sanitize_hostname(name) == expected

    @given(st.text())
    def test_sanitize_hostname_is_always_rfc1123(self, name: str) -> None:
        host = sanitize_hostname(name)
        assert len(host) <= 63
        assert HOSTNAME.match(host), host
        assert "--" not in host

    @given(st.text(), st.text())
    def test_sanitize_hostname_keeps_a_container_name(self, repo: str, branch: str) -> None:
        name = compose_name(repo, branch)
        assert sanitize_hostname(name) == name


class TestResetVolumeName:
    @pytest.mark.parametrize(
        ("repo", "branch", "expected"),
        [
            ("MyRepo", "feature/One", "myrepo-feature-one-17"),
            ("my_app", "detached", "my-app-detached-17"),
            ("日本", "", "repo-branch-17"),
            ("a.b", "nogit", "a-b-nogit-17"),
        ],
    )
    def test_reset_volume_name_examples(self, repo: str, branch: str, expected: str) -> None:
        assert reset_volume_name(repo, branch, 17) == expected

    @given(st.text(), st.text(), st.integers(min_value=0, max_value=2**63))
    def test_reset_volume_name_is_a_valid_volume(self, repo: str, branch: str, stamp: int) -> None:
        name = reset_volume_name(repo, branch, stamp)
        assert validate_volume(name) == name
        assert name.endswith(f"-{stamp}")
        assert name != "containai-data"

    def test_reset_volume_name_is_cut_to_255(self) -> None:
        name = reset_volume_name("r" * 300, "main", 1)
        assert len(name) == 255
        assert name.endswith("-1")


def test_workspace_labels_carry_what_reconcile_needs(tmp_path: Path) -> None:
    ws = tmp_path / "proj"
    ws.mkdir()
    spec = resolve_workspace(ws, Overrides(data_volume="vol1"))
    labels = workspace_labels(spec, "proj-nogit-2")
    assert labels[LABEL_MANAGED] == "true"
    assert labels[LABEL_WORKSPACE] == str(ws)
    assert labels[LABEL_NAME] == "proj-nogit-2"
    assert labels[LABEL_VERSION] == __version__
    assert labels[LABEL_DATA_VOLUME] == "vol1"
    assert labels[LABEL_OWNER]
    assert labels["containai.ssh-port-range"] == "2300-2500"
    assert all(isinstance(v, str) for v in labels.values())
