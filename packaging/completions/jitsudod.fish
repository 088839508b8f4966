# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_jitsudod_global_optspecs
    string join \n h/help V/version
end

function __fish_jitsudod_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_jitsudod_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_jitsudod_using_subcommand
    set -l cmd (__fish_jitsudod_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c jitsudod -n "__fish_jitsudod_needs_command" -s h -l help -d 'Print help'
complete -c jitsudod -n "__fish_jitsudod_needs_command" -s V -l version -d 'Print version'
complete -c jitsudod -n "__fish_jitsudod_needs_command" -f -a "serve" -d 'Run the service'
complete -c jitsudod -n "__fish_jitsudod_needs_command" -f -a "add-admin" -d 'Create an admin approver directly in the database and print its API token once (bootstrap: admins register hosts and approvers with jitsudoctl)'
complete -c jitsudod -n "__fish_jitsudod_needs_command" -f -a "check-policy" -d 'Check a policy file and print its rules'
complete -c jitsudod -n "__fish_jitsudod_using_subcommand serve" -l config -d 'Service config file' -r -F
complete -c jitsudod -n "__fish_jitsudod_using_subcommand serve" -l fake-now -d 'TESTING ONLY: evaluate policy hours and weekdays as if it were TIME (RFC 3339); grant validity always uses the real clock' -r
complete -c jitsudod -n "__fish_jitsudod_using_subcommand serve" -s h -l help -d 'Print help'
complete -c jitsudod -n "__fish_jitsudod_using_subcommand add-admin" -l group -d 'Groups the admin belongs to (may also approve for group:G)' -r
complete -c jitsudod -n "__fish_jitsudod_using_subcommand add-admin" -l config -d 'Service config file (names the database)' -r -F
complete -c jitsudod -n "__fish_jitsudod_using_subcommand add-admin" -s h -l help -d 'Print help'
complete -c jitsudod -n "__fish_jitsudod_using_subcommand check-policy" -s h -l help -d 'Print help'
