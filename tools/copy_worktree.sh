# Sourced by tools/debug_build_tests.sh and tools/memcheck.sh (not run on its own).
#
# copy_worktree REPO DEST: copy the working tree of REPO into DEST -- in a git checkout the
# tracked files and the untracked ones git does not ignore, as they are on disk (uncommitted
# edits included, build products left out); elsewhere everything but build/, .git and
# compiled modules.
copy_worktree() {
    local repo=$1 dest=$2
    mkdir -p "$dest"
    if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
            (cd "$repo" && while IFS= read -r -d '' f; do [[ -f "$f" ]] && printf '%s\0' "$f"; done) |
            (cd "$repo" && tar --null -T - -cf -) | tar -xf - -C "$dest"
    else
        (cd "$repo" && tar --exclude=./build --exclude=./.git --exclude='*.so' -cf - .) |
            tar -xf - -C "$dest"
    fi
}
