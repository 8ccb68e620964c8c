"""The import manifest: which host files land where, secrets, symlinks, excludes, git config."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from containai.model import ImportSection
from containai.model._manifest import (
    BUILTIN,
    Item,
    additional_target,
    build_tar,
    collect,
    filter_gitconfig,
    manifest,
)


def write(root: Path, rel: str, text: str = "x", mode: int = 0o644) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "src-home"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    ("host", "target"),
    [
        (".gitconfig", "config/git/gitconfig"),
        (".claude.json", "claude/claude.json"),
        (".claude/settings.json", "claude/settings.json"),
        (".claude/CLAUDE.md", "claude/CLAUDE.md"),
        (".claude/skills/review/SKILL.md", "claude/skills/review/SKILL.md"),
        (".claude/agents/a.md", "claude/agents/a.md"),
        (".claude/hooks/pre.sh", "claude/hooks/pre.sh"),
        (".claude/commands/c.md", "claude/commands/c.md"),
        (".claude/plugins/config.json", "claude/plugins/config.json"),
        (".codex/config.toml", "codex/config.toml"),
        (".gemini/settings.json", "gemini/settings.json"),
        (".copilot/config.json", "copilot/config.json"),
        (".config/gh/config.yml", "config/gh/config.yml"),
        (".bash_aliases", "shell/.bashrc.d/00-bash-aliases.sh"),
        (".bashrc.d/10-path.sh", "shell/.bashrc.d/10-path.sh"),
        (".tmux.conf", "config/tmux/tmux.conf"),
        (".config/tmux/theme.conf", "config/tmux/theme.conf"),
    ],
)
def test_collect_maps_host_path_to_volume_path(home: Path, host: str, target: str) -> None:
    write(home, host)
    found = collect(home, manifest())
    assert target in found.items
    assert found.items[target].source == host


def test_collect_ignores_files_outside_the_manifest(home: Path) -> None:
    write(home, ".ssh/id_ed25519", "key")
    write(home, ".claude/projects/p/log.jsonl")
    write(home, "notes.txt")
    assert collect(home, manifest()).items == {}


class TestSecrets:
    SECRETS = (
        (".claude.json", "claude/claude.json"),
        (".claude/.credentials.json", "claude/.credentials.json"),
        (".codex/auth.json", "codex/auth.json"),
        (".config/gh/hosts.yml", "config/gh/hosts.yml"),
        (".gemini/oauth_creds.json", "gemini/oauth_creds.json"),
    )

    def test_secrets_are_marked_in_the_manifest(self) -> None:
        secret = {e.source for e in BUILTIN if e.secret}
        assert {host for host, _ in self.SECRETS} <= secret
        assert ".gitconfig" not in secret

    def test_no_secrets_skips_them_and_says_why(self, home: Path) -> None:
        for host, _ in self.SECRETS:
            write(home, host, "token")
        write(home, ".config/gh/config.yml")
        found = collect(home, manifest(), no_secrets=True)
        assert set(found.items) == {"config/gh/config.yml"}
        reasons = {s.target: s.reason for s in found.skipped if s.secret}
        assert set(reasons) == {target for _, target in self.SECRETS}
        assert all("--no-secrets" in r for r in reasons.values())

    def test_imported_secrets_are_owner_only(self, home: Path) -> None:
        write(home, ".config/gh/hosts.yml", "token", mode=0o664)
        item = collect(home, manifest()).items["config/gh/hosts.yml"]
        assert item.secret
        assert item.mode == 0o600

    def test_missing_json_init_file_is_left_to_create(self, home: Path) -> None:
        found = collect(home, manifest())
        assert found.json_init == {"claude/claude.json": True, "claude/settings.json": False}

    def test_additional_paths_are_never_secret(self, home: Path) -> None:
        write(home, ".my-tool/token")
        cfg = ImportSection(additional_paths=("~/.my-tool",))
        found = collect(home, manifest(cfg), no_secrets=True)
        assert "my-tool/token" in found.items
        assert not found.items["my-tool/token"].secret


class TestSymlinks:
    def test_link_outside_the_directory_is_skipped(self, home: Path, tmp_path: Path) -> None:
        outside = write(tmp_path, "elsewhere/secret.txt")
        write(home, ".claude/skills/s/SKILL.md")
        os.symlink(outside, home / ".claude/skills/s/leak")
        os.symlink("../../../.ssh", home / ".claude/skills/s/up")
        found = collect(home, manifest())
        assert "claude/skills/s/leak" not in found.items
        assert "claude/skills/s/up" not in found.items
        skipped = {s.target: s.reason for s in found.skipped}
        assert "outside" in skipped["claude/skills/s/leak"]
        assert "outside" in skipped["claude/skills/s/up"]

    def test_link_inside_is_kept_as_a_relative_link(self, home: Path) -> None:
        write(home, ".claude/skills/s/SKILL.md")
        os.symlink(home / ".claude/skills/s/SKILL.md", home / ".claude/skills/abs")
        os.symlink("s/SKILL.md", home / ".claude/skills/rel")
        items = collect(home, manifest()).items
        assert items["claude/skills/abs"].kind == "symlink"
        assert items["claude/skills/abs"].link == "s/SKILL.md"
        assert items["claude/skills/rel"].link == "s/SKILL.md"

    def test_entry_linked_into_the_source_is_followed(self, home: Path) -> None:
        write(home, "dotfiles/tmux.conf", "set -g mouse on\n")
        os.symlink(home / "dotfiles/tmux.conf", home / ".tmux.conf")
        item = collect(home, manifest()).items["config/tmux/tmux.conf"]
        assert item.kind == "file"
        assert item.data == b"set -g mouse on\n"

    def test_entry_linked_outside_the_source_is_skipped(self, home: Path, tmp_path: Path) -> None:
        os.symlink(write(tmp_path, "shared/gitconfig", "[user]\n"), home / ".gitconfig")
        found = collect(home, manifest())
        assert "config/git/gitconfig" not in found.items
        assert any(
            s.target == "config/git/gitconfig" and "outside" in s.reason for s in found.skipped
        )

    def test_fifo_is_skipped(self, home: Path) -> None:
        (home / ".bashrc.d").mkdir()
        os.mkfifo(home / ".bashrc.d/pipe")
        found = collect(home, manifest())
        assert "shell/.bashrc.d/pipe" not in found.items
        assert any(s.target == "shell/.bashrc.d/pipe" for s in found.skipped)


class TestFilters:
    def test_priv_snippets_stay_on_the_host(self, home: Path) -> None:
        write(home, ".bashrc.d/10-aliases.sh")
        write(home, ".bashrc.d/20-work.priv.sh")
        items = collect(home, manifest()).items
        assert "shell/.bashrc.d/10-aliases.sh" in items
        assert "shell/.bashrc.d/20-work.priv.sh" not in items

    def test_codex_system_skills_are_left_out(self, home: Path) -> None:
        write(home, ".codex/skills/mine/SKILL.md")
        write(home, ".codex/skills/.system/bundled/SKILL.md")
        items = collect(home, manifest()).items
        assert "codex/skills/mine/SKILL.md" in items
        assert not [p for p in items if ".system" in p]

    def test_excludes_by_component_and_by_path(self, home: Path) -> None:
        write(home, ".claude/plugins/cache/big.bin")
        write(home, ".claude/plugins/repos/x/node_modules/m.js")
        write(home, ".claude/plugins/config.json")
        write(home, ".claude/skills/s/debug.log")
        cfg = ImportSection(excludes=("claude/plugins/cache", "node_modules", "*.log"))
        items = collect(home, manifest(cfg), excludes=cfg.excludes).items
        assert "claude/plugins/config.json" in items
        assert not [p for p in items if "cache" in p or "node_modules" in p or p.endswith(".log")]

    def test_later_entry_wins_for_the_same_path(self, home: Path) -> None:
        write(home, ".tmux.conf", "old")
        write(home, ".config/tmux/tmux.conf", "xdg")
        assert collect(home, manifest()).items["config/tmux/tmux.conf"].data == b"xdg"

    def test_modes_are_kept(self, home: Path) -> None:
        write(home, ".claude/hooks/run.sh", mode=0o750)
        assert collect(home, manifest()).items["claude/hooks/run.sh"].mode == 0o750


@pytest.mark.parametrize(
    ("path", "target"),
    [(".my-tool/x", "my-tool/x"), ("bin/tool", "bin/tool"), ("..odd/a", "odd/a")],
)
def test_additional_target_drops_leading_dots(path: str, target: str) -> None:
    assert additional_target(path) == target


def test_additional_path_outside_the_source_is_skipped(home: Path) -> None:
    found = collect(home, manifest(ImportSection(additional_paths=("/etc/hostname",))))
    assert found.items == {}
    assert "not under the source" in found.skipped[-1].reason


class TestGitConfig:
    def test_drops_credentials_signing_and_gpg(self) -> None:
        text = (
            "[user]\n\tname = Ada\n\temail = ada@example.com\n\tsigningkey = ABCDEF\n"
            "[commit]\n\tgpgsign = true\n"
            "[tag]\n\tgpgSign = true\n"
            '[credential "https://github.com"]\n\thelper = !gh auth git-credential\n'
            "[credential]\n\thelper = store\n"
            "[gpg]\n\tformat = ssh\n\tprogram = /usr/bin/gpg\n"
            '[gpg "ssh"]\n\tallowedSignersFile = ~/.ssh/allowed\n'
            "[alias]\n\tco = checkout\n"
        )
        out = filter_gitconfig(text)
        assert "name = Ada" in out
        assert "co = checkout" in out
        for gone in (
            "signingkey",
            "gpgsign",
            "gpgSign",
            "helper",
            "gpg",
            "[commit]",
            "[tag]",
            "credential",
        ):
            assert gone not in out
        assert out.endswith("[safe]\n\tdirectory = /home/agent/workspace\n")

    def test_drops_continuation_lines_of_a_dropped_key(self) -> None:
        out = filter_gitconfig(
            '[credential]\n\thelper = "!f() { \\\n echo x; }; f"\n\tuseHttpPath = true\n'
        )
        assert "echo x" not in out
        assert "useHttpPath = true" in out

    def test_keeps_user_section_with_keys_and_comments(self) -> None:
        out = filter_gitconfig("# mine\n[user]\n\tname = A ; comment\n[core]\n\teditor = vim\n")
        assert out.startswith("# mine\n[user]\n\tname = A ; comment\n[core]\n\teditor = vim\n")

    def test_safe_directory_not_duplicated(self) -> None:
        once = filter_gitconfig("[core]\n\tautocrlf = false")
        assert filter_gitconfig(once) == once
        assert once.count("directory = /home/agent/workspace") == 1

    def test_gitconfig_is_filtered_on_collect(self, home: Path) -> None:
        write(home, ".gitconfig", "[user]\n\tname = A\n\tsigningkey = K\n")
        data = collect(home, manifest()).items["config/git/gitconfig"].data.decode()
        assert "signingkey" not in data
        assert "directory = /home/agent/workspace" in data


def test_build_tar_owner_modes_and_links() -> None:
    items = [
        Item(path="a/f", kind="file", mode=0o640, data=b"abc"),
        Item(path="a", kind="dir", mode=0o700),
        Item(path="a/l", kind="symlink", mode=0o777, link="f"),
    ]
    with tarfile.open(fileobj=io.BytesIO(build_tar(items))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["a", "a/f", "a/l"]
        assert {(m.uid, m.gid) for m in members} == {(1000, 1000)}
        assert [m.mode for m in members[:2]] == [0o700, 0o640]
        assert members[2].issym()
        assert members[2].linkname == "f"
        extracted = tar.extractfile(members[1])
        assert extracted is not None
        assert extracted.read() == b"abc"


def test_claude_plugin_registry_paths_are_rehomed(home: Path) -> None:
    registry = f'{{"p": {{"installPath": "{home}/.claude/plugins/cache/p"}}}}'
    write(home, ".claude/plugins/installed_plugins.json", registry)
    write(home, ".claude/plugins/other.json", registry)
    items = collect(home, manifest()).items
    rehomed = items["claude/plugins/installed_plugins.json"].data.decode()
    assert rehomed == '{"p": {"installPath": "/home/agent/.claude/plugins/cache/p"}}'
    assert items["claude/plugins/other.json"].data.decode() == registry


def test_unreadable_files_are_skipped_not_fatal(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(home, ".claude/skills/s/ok.md")
    write(home, ".claude/skills/s/locked.md")
    write(home, ".tmux.conf")
    read = Path.read_bytes

    def guarded(self: Path) -> bytes:
        if self.name in {"locked.md", ".tmux.conf"}:
            raise PermissionError(13, "Permission denied", str(self))
        return read(self)

    monkeypatch.setattr(Path, "read_bytes", guarded)
    found = collect(home, manifest())
    assert "claude/skills/s/ok.md" in found.items
    reasons = {s.target: s.reason for s in found.skipped}
    assert reasons["claude/skills/s/locked.md"] == "cannot read: Permission denied"
    assert reasons["config/tmux/tmux.conf"] == "cannot read: Permission denied"


def test_gitconfig_user_section_with_only_a_signing_key_goes() -> None:
    out = filter_gitconfig("[user]\n\tsigningkey = K\n[core]\n\teditor = vim\n")
    assert out == "[core]\n\teditor = vim\n[safe]\n\tdirectory = /home/agent/workspace\n"
