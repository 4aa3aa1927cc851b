# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_probe_global_optspecs
    string join \n h/help V/version
end

function __fish_probe_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_probe_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_probe_using_subcommand
    set -l cmd (__fish_probe_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c probe -n "__fish_probe_needs_command" -s h -l help -d 'Print help'
complete -c probe -n "__fish_probe_needs_command" -s V -l version -d 'Print version'
complete -c probe -n "__fish_probe_needs_command" -f -a "check" -d 'Run one check now and print its phases, like `curl -w` per phase'
complete -c probe -n "__fish_probe_needs_command" -f -a "run" -d 'Run the agent: every configured check on its staggered schedule'
complete -c probe -n "__fish_probe_needs_command" -f -a "enroll" -d 'Enrol this probe with a coordinator: make its key pair, send a CSR with a one-time token, store the certificate (which names the probe id and region)'
complete -c probe -n "__fish_probe_needs_command" -f -a "validate" -d 'Check a configuration file and exit (0 valid, 2 invalid)'
complete -c probe -n "__fish_probe_needs_command" -f -a "completions" -d 'Print a shell completion script for bash, zsh, fish, elvish or powershell to standard output'
complete -c probe -n "__fish_probe_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c probe -n "__fish_probe_using_subcommand check" -l resolve -d 'Use ADDRESS for HOST:PORT instead of resolving it (like curl), repeatable' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l resolver -d 'Resolver: system, udp://IP[:PORT] or tcp://IP[:PORT]' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l cacert -d 'Extra CA certificates to trust (PEM file)' -r -F
complete -c probe -n "__fish_probe_using_subcommand check" -l timeout -d 'Time budget for the whole check' -r
complete -c probe -n "__fish_probe_using_subcommand check" -s X -l method -d 'Request method' -r
complete -c probe -n "__fish_probe_using_subcommand check" -s H -l header -d 'Extra request header, "Name: value", repeatable' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l expect-status -d 'Expected status codes, comma-separated (e.g. 2xx,301)' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l body-contains -d 'The body must contain this text' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l body-regex -d 'The body must match this regular expression' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l expect-rcode -d 'Expected DNS response code (DNS checks)' -r
complete -c probe -n "__fish_probe_using_subcommand check" -l json -d 'Print one JSON object instead of the table'
complete -c probe -n "__fish_probe_using_subcommand check" -l allow-private -d 'Allow loopback, private and other non-public targets (lab use)'
complete -c probe -n "__fish_probe_using_subcommand check" -l no-follow -d 'Do not follow redirects'
complete -c probe -n "__fish_probe_using_subcommand check" -s 4 -l ipv4 -d 'IPv4 only'
complete -c probe -n "__fish_probe_using_subcommand check" -s 6 -l ipv6 -d 'IPv6 only'
complete -c probe -n "__fish_probe_using_subcommand check" -s h -l help -d 'Print help'
complete -c probe -n "__fish_probe_using_subcommand run" -s c -l config -d 'The probe configuration file' -r -F
complete -c probe -n "__fish_probe_using_subcommand run" -s h -l help -d 'Print help'
complete -c probe -n "__fish_probe_using_subcommand enroll" -l coordinator -d 'The coordinator\'s enrolment address, IP:PORT (names are not resolved)' -r
complete -c probe -n "__fish_probe_using_subcommand enroll" -l server-name -d 'The name on the coordinator\'s certificate (default: the IP address)' -r
complete -c probe -n "__fish_probe_using_subcommand enroll" -l token -d 'The one-time enrolment token (`coordinator token create`)' -r
complete -c probe -n "__fish_probe_using_subcommand enroll" -l ca-fingerprint -d 'SHA-256 of the coordinator\'s CA certificate, 64 hex digits (colons allowed)' -r
complete -c probe -n "__fish_probe_using_subcommand enroll" -l state-dir -d 'Where to write probe.key (0600), probe.pem and ca.pem' -r -F
complete -c probe -n "__fish_probe_using_subcommand enroll" -s h -l help -d 'Print help'
complete -c probe -n "__fish_probe_using_subcommand validate" -s c -l config -d 'The probe configuration file' -r -F
complete -c probe -n "__fish_probe_using_subcommand validate" -s h -l help -d 'Print help'
complete -c probe -n "__fish_probe_using_subcommand completions" -s h -l help -d 'Print help'
complete -c probe -n "__fish_probe_using_subcommand help; and not __fish_seen_subcommand_from check run enroll validate completions help" -f -a "check" -d 'Run one check now and print its phases, like `curl -w` per phase'
complete -c probe -n "__fish_probe_using_subcommand help; and not __fish_seen_subcommand_from check run enroll validate completions help" -f -a "run" -d 'Run the agent: every configured check on its staggered schedule'
complete -c probe -n "__fish_probe_using_subcommand help; and not __fish_seen_subcommand_from check run enroll validate completions help" -f -a "enroll" -d 'Enrol this probe with a coordinator: make its key pair, send a CSR with a one-time token, store the certificate (which names the probe id and region)'
complete -c probe -n "__fish_probe_using_subcommand help; and not __fish_seen_subcommand_from check run enroll validate completions help" -f -a "validate" -d 'Check a configuration file and exit (0 valid, 2 invalid)'
complete -c probe -n "__fish_probe_using_subcommand help; and not __fish_seen_subcommand_from check run enroll validate completions help" -f -a "completions" -d 'Print a shell completion script for bash, zsh, fish, elvish or powershell to standard output'
complete -c probe -n "__fish_probe_using_subcommand help; and not __fish_seen_subcommand_from check run enroll validate completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
