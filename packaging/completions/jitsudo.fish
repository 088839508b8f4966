complete -c jitsudo -s u -l user -d 'Run the command as USER (a name, or #UID) instead of root; a user other than root and you gets a new session on a new pty, so the command cannot reach your terminal' -r -f -a "(__fish_complete_users)"
complete -c jitsudo -s e -l edit -d 'Edit FILEs under an edit grant (sudoedit): each is copied for you, your editor ($SUDO_EDITOR, $VISUAL, $EDITOR, else vi) runs as you, and root writes back only what changed. With --request: ask for an edit grant for the FILEs' -r -F
complete -c jitsudo -l import -d 'Verify a grant token (from FILE, or - for stdin) and cache it; only grants for you on this host are accepted' -r -F
complete -c jitsudo -l drop -d 'Forget your cached grants: all of them, or the one whose id starts with GRANT' -r
complete -c jitsudo -l for -d 'With --request or --extend: how long the grant should last, e.g. 15m or 2h' -r
complete -c jitsudo -l reason -d 'With --request or --extend: why you need it (recorded in the grant and the audit trail)' -r
complete -c jitsudo -l ticket -d 'With --request or --extend: the ticket id (INC-42) a policy rule may require; recorded in the grant' -r
complete -c jitsudo -l extend -d 'Ask the approval service to extend your grant GRANT (its id, or a unique prefix): approved, a new grant replaces it, and a command running under it continues under the new one' -r
complete -c jitsudo -s l -l list -d 'List your grants usable on this host: id, commands, run-as, expiry, uses left'
complete -c jitsudo -s k -l reset-timestamp -d 'Reset the re-authentication timestamp (as sudo -k); grants stay cached'
complete -c jitsudo -l request -d 'Ask the approval service for a grant to run COMMAND (needs service = in jitsudo.toml)'
complete -c jitsudo -l once -d 'With --request: ask for a grant that can be used only once'
complete -c jitsudo -l no-wait -d 'With --request or --extend: return at once instead of waiting for approval'
complete -c jitsudo -l run -d 'With --request: run the command as soon as the grant arrives'
complete -c jitsudo -l sync -d 'Pull grants and the revocation list for this host from the service (root; run by a timer)'
complete -c jitsudo -l enroll -d 'Create this host\'s identity key if missing and print how to register it (root)'
complete -c jitsudo -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jitsudo -s V -l version -d 'Print version'
