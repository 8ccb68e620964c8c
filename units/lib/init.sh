#!/bin/bash
# containai-init: per-boot workspace setup, run by containai-init.service (as root) before sshd
# and the inner Docker start.
#
#   1. inner Docker switch: /etc/containai/inner-docker-enabled exists iff CAI_INNER_DOCKER=1
#   2. data volume structure under /mnt/agent-data, made as the agent user; every path must
#      resolve under the volume and no symlink in it is followed
#   3. home links (~/.claude, ~/.config/gh, ~/.gitconfig, ...) into the volume, as the agent user
#   4. the login environment /run/containai/env.sh (see "Environment" below)
#   5. git: safe.directory for the workspace mount (the host's files have the host's owner)
#   6. the host's workspace path as a symlink to /home/agent/workspace, so absolute paths that
#      tools print match the host's
#   7. the public key in CAI_AUTHORIZED_KEY (set by `cai` when it creates the container) added
#      to the agent's authorized_keys unless already there: no engine call on the way to sshd
#
# Environment. A service does not inherit the container's environment, so it is read from
# /proc/1/environ (PID 1 was started with it). The login environment is, highest first:
#   - container variables CAI_ENV_<NAME>=value, exported as NAME=value (what `cai` sets from
#     its --env options and config);
#   - KEY=value lines of /mnt/agent-data/.env, parsed as data, never sourced or eval'd:
#     blank lines and # comments skipped, an optional leading "export ", KEY must match
#     [A-Za-z_][A-Za-z0-9_]*, a value in matching single or double quotes is taken literally
#     (no expansion, no escapes), an unquoted value ends at " #"; a few names that would change
#     how shells or the loader behave (PATH, HOME, BASH_ENV, LD_PRELOAD, ...) are refused;
#   - the container's TZ.
# The result is written as `export NAME='value'` lines (single-quoted, so sourcing is inert),
# mode 0640 root:agent, and loaded by /usr/local/lib/containai/bash_env.
#
# Problems with user data (a symlink where a directory should be, a bad .env line) are logged as
# warnings and skipped; only a missing data directory or an unwritable env file fail the unit,
# which keeps sshd down (ssh.service Requires= this unit).

set -uo pipefail

readonly DATA=/mnt/agent-data
readonly AGENT=agent
readonly AGENT_HOME=/home/agent
readonly WORKSPACE=/home/agent/workspace
readonly RUN_DIR=/run/containai
readonly ENV_OUT=$RUN_DIR/env.sh
readonly FLAG=/etc/containai/inner-docker-enabled

# Volume directories (relative to $DATA), and home links: "home path:volume path".
readonly DIRS=(
    claude claude/plugins
    config config/gh config/git config/tmux
    gemini copilot codex
    shell shell/.bashrc.d
    vscode-server
    containai
)
readonly LINKS=(
    ".claude:claude"
    ".claude.json:claude/claude.json"
    ".config/gh:config/gh"
    ".config/tmux:config/tmux"
    ".gitconfig:config/git/gitconfig"
    ".gemini:gemini"
    ".copilot:copilot"
    ".codex:codex"
    ".vscode-server:vscode-server"
)
readonly DENIED_NAMES=" PATH HOME USER LOGNAME SHELL PWD OLDPWD IFS ENV BASH_ENV CDPATH \
PS4 SHELLOPTS BASHOPTS GLOBIGNORE LD_PRELOAD LD_LIBRARY_PATH LD_AUDIT CONTAINAI_ENV_LOADED "
readonly WORKSPACE_PREFIXES=(/home/ /tmp/ /mnt/ /workspaces/ /Users/ /srv/)

log() { echo "containai-init: $*"; }
warn() { echo "containai-init: warning: $*" >&2; }

# -- as the agent user: volume structure and home links -----------------------------------------
ensure_dir() {
    local rel=$1 cur=$DATA part resolved
    local -a parts
    IFS=/ read -r -a parts <<<"$rel"
    for part in "${parts[@]}"; do
        if [[ -z $part || $part == . || $part == .. ]]; then
            warn "refusing volume path '$rel'"
            return 1
        fi
        cur=$cur/$part
        if [[ -L $cur ]]; then
            warn "$cur is a symlink; not following it (volume paths must stay under $DATA)"
            return 1
        fi
        if [[ -e $cur && ! -d $cur ]]; then
            warn "$cur exists and is not a directory; leaving it"
            return 1
        fi
        if [[ ! -d $cur ]] && ! mkdir -- "$cur"; then
            warn "cannot create $cur"
            return 1
        fi
    done
    resolved=$(realpath -e -- "$cur") || return 1
    if [[ $resolved != "$DATA"/* ]]; then
        warn "$cur resolves to $resolved, outside $DATA"
        return 1
    fi
}

ensure_file() {
    local path=$DATA/$1
    ensure_dir "$(dirname -- "$1")" || return 1
    if [[ -L $path ]]; then
        warn "$path is a symlink; leaving it"
        return 1
    fi
    [[ -e $path ]] || : >"$path"
}

ensure_link() {
    local from=$AGENT_HOME/$1 to=$DATA/$2
    mkdir -p -- "$(dirname -- "$from")" || return 1
    if [[ -L $from ]]; then
        [[ $(readlink -- "$from") == "$to" ]] && return 0
        rm -f -- "$from"
    elif [[ -e $from ]]; then
        # Made before the link existed (by a tool at image build time): move it into the volume
        # when the volume has none, else keep it aside. Never delete user data.
        if [[ ! -e $to && ! -L $to ]]; then
            mv -- "$from" "$to" || return 1
        else
            mv -- "$from" "$from.containai-bak.$(date +%s)" || return 1
        fi
    fi
    ln -s -- "$to" "$from"
}

as_agent() {
    local rel item
    for rel in "${DIRS[@]}"; do
        ensure_dir "$rel"
    done
    ensure_file config/git/gitconfig
    for item in "${LINKS[@]}"; do
        ensure_link "${item%%:*}" "${item#*:}" || warn "cannot link ~/${item%%:*}"
    done
    return 0
}

if [[ ${1:-} == --as-agent ]]; then
    as_agent
    exit 0
fi

# -- as root -------------------------------------------------------------------------------------
if [[ $EUID -ne 0 ]]; then
    echo "containai-init: must run as root (it is run by containai-init.service)" >&2
    exit 1
fi

declare -A CENV=()
while IFS= read -r -d '' kv; do
    [[ $kv == *=* ]] && CENV[${kv%%=*}]=${kv#*=}
done </proc/1/environ
cenv() { printf '%s' "${CENV[$1]-}"; }

# 1. inner Docker switch
mkdir -p /etc/containai
if [[ $(cenv CAI_INNER_DOCKER) == 1 ]]; then
    : >"$FLAG"
    log "inner Docker enabled"
else
    rm -f -- "$FLAG"
fi

# 2-3. volume structure and home links
if [[ -L $DATA || ! -d $DATA ]]; then
    echo "containai-init: $DATA is missing or not a directory" >&2
    exit 1
fi
if [[ $(stat -c %u -- "$DATA") != "$(id -u "$AGENT")" ]]; then
    chown -h "$AGENT:$AGENT" -- "$DATA" || warn "cannot give $DATA to $AGENT"
fi
HOME=$AGENT_HOME runuser -u "$AGENT" -- "$0" --as-agent || warn "volume setup had problems"

# 4. login environment
declare -A OUT=()
for name in "${!CENV[@]}"; do
    [[ $name == CAI_ENV_?* ]] || continue
    key=${name#CAI_ENV_}
    if [[ ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ || $DENIED_NAMES == *" $key "* ]]; then
        warn "container variable $name: refusing name $key"
        continue
    fi
    OUT[$key]=${CENV[$name]}
done

trim() {
    local s=$1
    s=${s#"${s%%[![:space:]]*}"}
    printf '%s' "${s%"${s##*[![:space:]]}"}"
}

if [[ -L $DATA/.env ]]; then
    warn "$DATA/.env is a symlink; ignoring it"
elif [[ -f $DATA/.env ]]; then
    # Read with the agent's rights, so the file can never show root anything the agent can't.
    n=0
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=$(trim "${line%$'\r'}")
        [[ -z $line || $line == \#* ]] && continue
        [[ $line == "export "* ]] && line=$(trim "${line#export }")
        if [[ $line != *=* ]]; then
            warn ".env line $n: no '='; skipped"
            continue
        fi
        key=$(trim "${line%%=*}")
        val=$(trim "${line#*=}")
        if [[ ! $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ || $DENIED_NAMES == *" $key "* ]]; then
            warn ".env line $n: refusing name '$key'"
            continue
        fi
        if [[ $val =~ ^\"(.*)\"$ || $val =~ ^\'(.*)\'$ ]]; then
            val=${BASH_REMATCH[1]}
        else
            val=${val%%[[:space:]]#*}
        fi
        [[ -v OUT[$key] ]] || OUT[$key]=$val
    done < <(runuser -u "$AGENT" -- cat -- "$DATA/.env")
fi
tz=$(cenv TZ)
if [[ -n $tz && ! -v OUT[TZ] ]]; then
    OUT[TZ]=$tz
fi

install -d -m 0755 "$RUN_DIR"
tmp=$(mktemp "$RUN_DIR/env.XXXXXX") || exit 1
{
    echo "# Written by containai-init at boot. Edit $DATA/.env (or pass --env) instead."
    if ((${#OUT[@]})); then
        while IFS= read -r key; do
            val=${OUT[$key]}
            printf "export %s='%s'\n" "$key" "${val//\'/\'\\\'\'}"
        done < <(printf '%s\n' "${!OUT[@]}" | LC_ALL=C sort)
    fi
} >"$tmp" || exit 1
chown "root:$AGENT" "$tmp" && chmod 0640 "$tmp" && mv -f -- "$tmp" "$ENV_OUT" || exit 1
log "environment: ${#OUT[@]} variable(s)"

# 5. git
ws=$(cenv CAI_HOST_WORKSPACE)
for dir in "$WORKSPACE" ${ws:+"$ws"}; do
    if ! git config --system --get-all safe.directory | grep -qxF -- "$dir"; then
        git config --system --add safe.directory "$dir" || warn "cannot set git safe.directory"
    fi
done

# 6. the host's workspace path
link_workspace() {
    local path=$1 prefix ok=0
    [[ $path == "$WORKSPACE" ]] && return 0
    if [[ $path != /* || /$path/ == */../* || /$path/ == */./* || $path == *//* ]]; then
        warn "CAI_HOST_WORKSPACE '$path' is not a clean absolute path"
        return 0
    fi
    for prefix in "${WORKSPACE_PREFIXES[@]}"; do
        [[ $path == "$prefix"?* ]] && ok=1
    done
    if ((!ok)) || [[ $path == "$DATA" || $path == "$DATA"/* || $path == "$AGENT_HOME"/* ]]; then
        warn "CAI_HOST_WORKSPACE '$path' is not under ${WORKSPACE_PREFIXES[*]}; no link"
        return 0
    fi
    path=${path%/}
    if [[ -L $path ]]; then
        [[ $(readlink -- "$path") == "$WORKSPACE" ]] && return 0
        rm -f -- "$path"
    elif [[ -e $path ]]; then
        warn "$path exists in the container; not replacing it with the workspace link"
        return 0
    fi
    mkdir -p -- "$(dirname -- "$path")" && ln -s -- "$WORKSPACE" "$path" ||
        warn "cannot link $path to $WORKSPACE"
}
[[ -n $ws ]] && link_workspace "$ws"

# 7. cai's key (a public key: nothing secret travels in the container's environment)
key=$(cenv CAI_AUTHORIZED_KEY)
if [[ -n $key ]]; then
    if [[ $key =~ ^(ssh-ed25519|ecdsa-sha2-nistp[0-9]+|ssh-rsa)\ [A-Za-z0-9+/=]+(\ [^[:cntrl:]]*)?$ ]]; then
        ssh_dir=$AGENT_HOME/.ssh
        if [[ -L $ssh_dir || -L $ssh_dir/authorized_keys ]]; then
            warn "$ssh_dir or its authorized_keys is a symlink; cai's key not added"
        else
            # as the agent: root never writes through paths the agent controls
            runuser -u "$AGENT" -- sh -c 'umask 077; mkdir -p "$1"; f="$1/authorized_keys"
                touch "$f"; chmod 0600 "$f"; grep -qxF -- "$2" "$f" || printf "%s\n" "$2" >>"$f"' \
                add-key "$ssh_dir" "$key" || warn "cannot add cai's key to $ssh_dir"
        fi
    else
        warn "CAI_AUTHORIZED_KEY is not an OpenSSH public key line; ignored"
    fi
fi

log "done"
exit 0
