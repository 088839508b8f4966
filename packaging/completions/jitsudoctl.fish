# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jitsudoctl_global_optspecs
    string join \n h/help V/version
end

function __fish_jitsudoctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jitsudoctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jitsudoctl_using_subcommand
    set -l cmd (__fish_jitsudoctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -s V -l version -d 'Print version'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "keygen" -d 'Create a signing key: DIR/ID.key (secret, 0600) and DIR/ID.pub; print the [[trusted_key]] block'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "mint" -d 'Sign a grant offline and print the token on stdout'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "verify" -d 'Verify a token against a host config\'s trusted keys and print its claims'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "journal" -d 'The host\'s local hash-chained journal (/var/lib/jitsudo/journal)'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "policy" -d 'Approval-service policy files'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "host" -d 'Register hosts with the approval service (admin token)'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "approver" -d 'Create approvers on the approval service (admin token)'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "requests" -d 'List requests on the approval service'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "approve" -d 'Approve a pending request'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "deny" -d 'Deny a pending request'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "revoke" -d 'Revoke an issued grant; hosts deny it after their next `jitsudo --sync`'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "login" -d 'Sign in through the approval service\'s identity provider (device authorization: open the URL it prints, anywhere) and keep the short-lived token in ~/.config/jitsudo/token (0600)'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "logout" -d 'Remove the token jitsudoctl login kept'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "audit" -d 'Search the approval service\'s audit trail, or verify its hash chain (`audit verify`)'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "recordings" -d 'List the session recordings stored on the approval service (approver token)'
complete -c jitsudoctl -n "__fish_jitsudoctl_needs_command" -f -a "replay" -d 'Play a session recording back in the terminal (after checking its hash chain): one on this host, or with --host one fetched from the approval service'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand keygen" -l id -d 'Key id, as hosts will name it in [[trusted_key]] (letters, digits, \'-\', \'_\', \'.\')' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand keygen" -l out -d 'Directory for the key files (created 0700 if missing)' -r -f -a "(__fish_complete_directories)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l key -d 'Secret key file written by `jitsudoctl keygen` (must not be readable by group or others)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l user -d 'User the grant is for' -r -f -a "(__fish_complete_users)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l host -d 'Host id the grant is valid on (the host\'s `host =` in jitsudo.toml)' -r -f -a "(__fish_print_hostnames)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l command -d 'Command spec the grant allows; repeat for several (e.g. "/usr/bin/journalctl *"). With --kind edit: an absolute file path jitsudo -e may edit (e.g. /etc/nginx/nginx.conf)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l run-as -d 'User the commands run as' -r -f -a "(__fish_complete_users)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l for -d 'How long the grant lasts from its start, e.g. 15m, 2h' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l start -d 'When the grant starts: an RFC 3339 time, or an offset like +10m or -1h (default: now)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l uses -d 'Number of times the grant may be used (1 = one-time); unlimited within its window if not given' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l kind -d 'exec (run commands through jitsudo), login (SSH login through pam_jitsudo) or edit (edit the --command files with jitsudo -e)' -r -f -a "exec\t''
login\t''
edit\t''"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l reason -d 'Why the grant exists (shown to the user and recorded in logs)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l ticket -d 'Ticket id recorded in the grant (`ticket` claim; shown by jitsudo -l)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l extends -d 'The grant this one replaces (`extends` claim): a command running under GRANT on the host continues under this grant instead of ending' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l session-bound -d 'End the grant when the login session that used it closes (pam_jitsudo drops it then)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l allow-exec -d 'Let the command execute other programs (shell escapes, pagers, `find -exec`); by default every exec after the granted program fails'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -l record -d 'Record every run under the grant (/var/log/jitsudo-io, replayable by sudoreplay and jitsudoctl replay)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand mint" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand verify" -l config -d 'Host config whose [[trusted_key]] entries to trust' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand verify" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand journal; and not __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand journal; and not __fish_seen_subcommand_from verify" -f -a "verify" -d 'Check the whole chain, then every session recording it names; names the first record altered, removed or reordered, and each recording altered, cut short or missing'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand journal; and __fish_seen_subcommand_from verify" -l dir -d 'State directory holding `journal` and `journal.anchor`' -r -f -a "(__fish_complete_directories)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand journal; and __fish_seen_subcommand_from verify" -l recordings -d 'Directory holding the session recordings' -r -f -a "(__fish_complete_directories)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand journal; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand policy; and not __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand policy; and not __fish_seen_subcommand_from check" -f -a "check" -d 'Parse a policy file and report the first error with its file and line'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand policy; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand host; and not __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand host; and not __fish_seen_subcommand_from add" -f -a "add" -d 'Register a host\'s public key (as printed by `jitsudo --enroll` on the host)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand host; and __fish_seen_subcommand_from add" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand host; and __fish_seen_subcommand_from add" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand host; and __fish_seen_subcommand_from add" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand host; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and not __fish_seen_subcommand_from add slack" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and not __fish_seen_subcommand_from add slack" -f -a "add" -d 'Create an approver and print its API token (shown once; the service keeps only a hash)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and not __fish_seen_subcommand_from add slack" -f -a "slack" -d 'Link an approver to a Slack member id (for votes from Slack\'s buttons)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l group -d 'Group the approver belongs to (policy rules name approvers as group:G); repeatable' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l scope -d 'What the token may do: approve (and read), admin (everything), or read (lists, the audit trail, recordings; no votes, no revocations)' -r -f -a "approve\t''
admin\t''
read\t''"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l expires -d 'How long the token works: a duration (90d, 12h), or never' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l slack-id -d 'The approver\'s Slack member id (U…): their clicks on Slack\'s Approve/Deny buttons count as their votes' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -l admin -d 'The approver may also register hosts and approvers (the same as --scope admin)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from slack" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from slack" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from slack" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approver; and __fish_seen_subcommand_from slack" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand requests" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand requests" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand requests" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand requests" -l pending -d 'Only requests still waiting for approval'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand requests" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approve" -l comment -d 'Note recorded with the approval' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approve" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approve" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approve" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand approve" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand deny" -l reason -d 'Why (recorded and shown to the requester)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand deny" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand deny" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand deny" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand deny" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand revoke" -l reason -d 'Why (recorded)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand revoke" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand revoke" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand revoke" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand revoke" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand login" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand login" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand login" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand login" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand logout" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l user -d 'Only records about this user' -r -f -a "(__fish_complete_users)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l host -d 'Only records about this host' -r -f -a "(__fish_print_hostnames)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l grant -d 'Only records about this grant (and the request it came from)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l since -d 'From this time on: RFC 3339, or a duration ago (e.g. 24h, 7d)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l until -d 'Before this time: RFC 3339, or a duration ago' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -l json -d 'One JSON object per line (for a SIEM), the records exactly as stored and hashed'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and not __fish_seen_subcommand_from verify" -f -a "verify" -d 'Fetch the whole trail and check its hash chain here (and ask the service to check it too); names the first record altered, removed or reordered. Exit 1 if broken'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand audit; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l user -d 'Only recordings of this user\'s runs' -r -f -a "(__fish_complete_users)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l host -d 'Only recordings made on this host' -r -f -a "(__fish_print_hostnames)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l grant -d 'Only recordings of runs under this grant' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l state -d 'Only recordings in this state: sealed (their run sealed them) or cut (their supervisor was killed first)' -r -f -a "sealed\t''
cut\t''"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l since -d 'Started at or after: RFC 3339, or a duration ago (e.g. 24h, 7d)' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand recordings" -s h -l help -d 'Print help'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l dir -d 'Directory holding the recordings' -r -f -a "(__fish_complete_directories)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l host -d 'Fetch the recording this host uploaded from the approval service (approver token)' -r -f -a "(__fish_print_hostnames)"
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l speed -d 'Play faster (2 = twice as fast) or slower (0.5); 0 prints everything at once' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l max-wait -d 'Never pause longer than this many seconds' -r
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l service -d 'Approval service URL (default: $JITSUDO_SERVICE, else service = in /etc/jitsudo/jitsudo.toml)' -r -f
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l token-file -d 'File holding the approver API token (default: $JITSUDO_TOKEN, else the token of jitsudoctl login)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l ca-file -d 'PEM file of CA certificates to trust (default: $JITSUDO_CA_FILE, else the system bundle)' -r -F
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -l force -d 'Play a recording whose chain does not verify (it is still reported)'
complete -c jitsudoctl -n "__fish_jitsudoctl_using_subcommand replay" -s h -l help -d 'Print help'
