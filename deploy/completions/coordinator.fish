# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_coordinator_global_optspecs
    string join \n h/help V/version
end

function __fish_coordinator_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_coordinator_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_coordinator_using_subcommand
    set -l cmd (__fish_coordinator_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c coordinator -n "__fish_coordinator_needs_command" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_needs_command" -s V -l version -d 'Print version'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "regions" -d 'List the region catalog, or check a catalog file (exit 2 when invalid)'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "run" -d 'Run the coordinator: the QUIC service for probes, until SIGINT or SIGTERM. SIGHUP (or editing the file) reloads the targets'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "validate" -d 'Check a configuration file and exit (0 valid, 2 invalid, every problem listed)'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "simulate" -d 'Run scenario files through the detection engine in virtual time and score them (exit 0 when every expectation is met, 1 when one is not, 2 for an unreadable or invalid file)'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "demo" -d 'Watch detection live: a coordinator and 30 simulated probes on 127.0.0.1 in real time, a scripted fiber cut, the incident detected, explained and resolved (exit 0 when it was, 1 when not, 2 when the demo could not run). Needs no network and no external service'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "token" -d 'Enrolment tokens'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "probe" -d 'The probe registry'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "user" -d 'Staff accounts of the web UI and API (viewer, community-manager, sre-admin) and their API tokens'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "maintenance" -d 'Maintenance windows: planned work during which incidents covered by them page nobody'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "incidents" -d 'List the incidents detection stored, oldest first: a table, or one JSON object per line'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "incident" -d 'One stored incident: its post-mortem'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "trends" -d 'Time to detect, resolve and (site incidents) communicate per UTC month and class over the stored incidents: median, p90 and count'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "message" -d 'Member messages: the drafts the coordinator offered for its incidents, and a person\'s edit, approval and publication of them. Nothing is published without approval'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "draft" -d 'Draft the member message of a stored incident, for a community manager to edit and publish (nothing is published): its class\'s wording at one stage, scoped with the regions\' member-facing names. Exit 1 when the incident does not exist or is a state of the monitoring network, which members never hear about'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "migrate" -d 'Bring a data directory\'s database up to this build\'s schema; print the versions before and after'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "completions" -d 'Print a shell completion script for bash, zsh, fish, elvish or powershell to standard output'
complete -c coordinator -n "__fish_coordinator_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand regions" -l file -d 'A catalog file; the built-in catalog when omitted' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand regions" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand run" -s c -l config -d 'The coordinator configuration file' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand run" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand validate" -s c -l config -d 'The coordinator configuration file' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand validate" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand simulate" -l regions -d 'A region catalog file; the built-in catalog when omitted' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand simulate" -l json -d 'Print one JSON object per scenario per line instead of the readable report'
complete -c coordinator -n "__fish_coordinator_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l interval -d 'Check interval: 2s stands for a 60 s world, 30 times faster' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l cut-after -d 'Live time before the fiber cut' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l cut-for -d 'How long the cut lasts' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l seed -d 'Seed of the simulated world\'s draws' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l data-dir -d 'Data directory (must be empty or absent; kept). Default: a temporary directory, removed at the end' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l http -d 'Where to serve the map and the other pages (a free port when this one is taken)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l linger -d 'Keep everything running this long after the verdict, to look around. Default: until Ctrl-C when run from a terminal, not at all otherwise' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -l keep -d 'Keep the temporary data directory'
complete -c coordinator -n "__fish_coordinator_using_subcommand demo" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and not __fish_seen_subcommand_from create help" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and not __fish_seen_subcommand_from create help" -f -a "create" -d 'Print a one-time enrolment token for a region, and the CA fingerprint to pin'
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and not __fish_seen_subcommand_from create help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from create" -l data-dir -d 'The coordinator\'s data directory (database and CA)' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from create" -l region -d 'The region the enrolled probe will belong to' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from create" -l expires -d 'How long the token stays usable' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from create" -l regions -d 'A region catalog file; the built-in catalog when omitted' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Print a one-time enrolment token for a region, and the CA fingerprint to pin'
complete -c coordinator -n "__fish_coordinator_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and not __fish_seen_subcommand_from list revoke help" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and not __fish_seen_subcommand_from list revoke help" -f -a "list" -d 'List enrolled probes'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and not __fish_seen_subcommand_from list revoke help" -f -a "revoke" -d 'Revoke a probe: its certificate is refused from now on'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and not __fish_seen_subcommand_from list revoke help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from list" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from revoke" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from revoke" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "list" -d 'List enrolled probes'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "revoke" -d 'Revoke a probe: its certificate is refused from now on'
complete -c coordinator -n "__fish_coordinator_using_subcommand probe; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "add" -d 'Add a user. Without --password-stdin a password is generated and printed once'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "list" -d 'List users and their roles'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "remove" -d 'Remove a user; their sessions and tokens end at once'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "role" -d 'Change a user\'s role (effective at their next request)'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "passwd" -d 'Set a new password (generated and printed without --password-stdin); their sessions end'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "token" -d 'Issue an API token for a user (sent as `Authorization: Bearer TOKEN`), printed once'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and not __fish_seen_subcommand_from add list remove role passwd token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from add" -l role -d 'viewer, community-manager or sre-admin' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from add" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Read the password from standard input (at least 12 characters)'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from list" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from remove" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from role" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from role" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the password from standard input'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from token" -l label -d 'What it is for, shown in logs' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from token" -l expires -d 'How long it stays valid' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from token" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from token" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user. Without --password-stdin a password is generated and printed once'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users and their roles'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a user; their sessions and tokens end at once'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "role" -d 'Change a user\'s role (effective at their next request)'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Set a new password (generated and printed without --password-stdin); their sessions end'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "token" -d 'Issue an API token for a user (sent as `Authorization: Bearer TOKEN`), printed once'
complete -c coordinator -n "__fish_coordinator_using_subcommand user; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and not __fish_seen_subcommand_from list add remove help" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and not __fish_seen_subcommand_from list add remove help" -f -a "list" -d 'List the windows: the configuration\'s (with --config) and the stored ones, with whether each is open now and its next occurrence'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and not __fish_seen_subcommand_from list add remove help" -f -a "add" -d 'Schedule a window: one-off (--start, --end) or recurring (--every, --at, --duration). Checked against the configuration\'s targets and regions'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and not __fish_seen_subcommand_from list add remove help" -f -a "remove" -d 'Remove a stored window; a page it held back goes out if the incident is still open'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and not __fish_seen_subcommand_from list add remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from list" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from list" -l config -d 'Also list the windows of this configuration file' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from list" -l json -d 'One JSON object per line'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l title -d 'What is being done, in words members may read' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l target -d 'A target id (repeat); every target when absent' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l region -d 'A region id (repeat); every region when absent' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l start -d 'One-off: the start (RFC 3339, or "YYYY-MM-DD HH:MM" in --timezone)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l end -d 'One-off: the end' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l every -d 'Recurring: day, week or month' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l days -d 'Weekly: the days, comma-separated (mon,tue,...)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l day -d 'Monthly: the day of the month' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l at -d 'Recurring: local start time, HH:MM' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l duration -d 'Recurring: how long each occurrence lasts (2h, 90m)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l timezone -d 'IANA time zone of local times (default UTC)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l from -d 'Recurring: first local date (YYYY-MM-DD)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l until -d 'Recurring: last local date (YYYY-MM-DD)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l by -d 'Who schedules it (recorded)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l config -d 'The coordinator\'s configuration (targets and regions are checked against it)' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -l private -d 'Keep it off the public status page'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from remove" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the windows: the configuration\'s (with --config) and the stored ones, with whether each is open now and its next occurrence'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "add" -d 'Schedule a window: one-off (--start, --end) or recurring (--every, --at, --duration). Checked against the configuration\'s targets and regions'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a stored window; a page it held back goes out if the incident is still open'
complete -c coordinator -n "__fish_coordinator_using_subcommand maintenance; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand incidents" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand incidents" -l json -d 'Print one JSON object per incident per line instead of the table'
complete -c coordinator -n "__fish_coordinator_using_subcommand incidents" -l open -d 'Only incidents still open (confirmed or paged)'
complete -c coordinator -n "__fish_coordinator_using_subcommand incidents" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and not __fish_seen_subcommand_from export note help" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and not __fish_seen_subcommand_from export note help" -f -a "export" -d 'Write a stored incident\'s post-mortem: key moments and the timeline (detection\'s history, the member messages\' drafting, approval and publication), time to detect, communicate and resolve, the affected regions by their member-facing names, the evidence, the explanation and a chart of the round trip per minute (exit 1 when there is no such incident, 2 for a usage error)'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and not __fish_seen_subcommand_from export note help" -f -a "note" -d 'Add a note to an incident\'s timeline and post-mortem ("rolled back the 14:02 deploy"). Notes are only ever added: a correction is another note'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and not __fish_seen_subcommand_from export note help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from export" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from export" -l format -d 'md or json' -r -f -a "md\t'Markdown, linking the chart'
json\t'One JSON object, the chart\'s series included'"
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from export" -s o -l output -d 'Write the post-mortem here instead of standard output' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from export" -l chart -d 'Write the latency chart here (SVG); the Markdown links it' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from export" -l regions -d 'A region catalog file; the built-in catalog when omitted' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from export" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from note" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from note" -l by -d 'Who writes it' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from note" -l text -d 'The words (at most 2,000 characters)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from note" -l at -d 'The moment it is about (RFC 3339); now when omitted' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from note" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from help" -f -a "export" -d 'Write a stored incident\'s post-mortem: key moments and the timeline (detection\'s history, the member messages\' drafting, approval and publication), time to detect, communicate and resolve, the affected regions by their member-facing names, the evidence, the explanation and a chart of the round trip per minute (exit 1 when there is no such incident, 2 for a usage error)'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from help" -f -a "note" -d 'Add a note to an incident\'s timeline and post-mortem ("rolled back the 14:02 deploy"). Notes are only ever added: a correction is another note'
complete -c coordinator -n "__fish_coordinator_using_subcommand incident; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand trends" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand trends" -l since -d 'First month included, YYYY-MM (UTC, by onset)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand trends" -l json -d 'Print one JSON object (what `GET /api/v1/trends` returns) instead of the table'
complete -c coordinator -n "__fish_coordinator_using_subcommand trends" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -f -a "list" -d 'List member messages, oldest first: id, incident, stage, state, title'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -f -a "show" -d 'Print one message whole: its words and who did what when'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -f -a "edit" -d 'Reword a message (title, text or both). An approved message needs approving again; a published one is never changed'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -f -a "approve" -d 'Approve a draft as it reads now'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -f -a "publish" -d 'Publish an approved message: from now on it is public, and the incident\'s first publication is its time to communicate'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and not __fish_seen_subcommand_from list show edit approve publish help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from list" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from list" -l incident -d 'Only this incident\'s messages' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from list" -l json -d 'One JSON object per message per line'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from show" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from edit" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from edit" -l by -d 'Who is editing (recorded)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from edit" -l title -d 'The new title' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from edit" -l body-file -d 'A file holding the new text (`-` for standard input)' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from edit" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from approve" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from approve" -l by -d 'Who approves (recorded)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from approve" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from publish" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from publish" -l by -d 'Who publishes (recorded)' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from publish" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from help" -f -a "list" -d 'List member messages, oldest first: id, incident, stage, state, title'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print one message whole: its words and who did what when'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from help" -f -a "edit" -d 'Reword a message (title, text or both). An approved message needs approving again; a published one is never changed'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from help" -f -a "approve" -d 'Approve a draft as it reads now'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from help" -f -a "publish" -d 'Publish an approved message: from now on it is public, and the incident\'s first publication is its time to communicate'
complete -c coordinator -n "__fish_coordinator_using_subcommand message; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand draft" -s c -l config -d 'The coordinator configuration: data directory, target names, templates' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand draft" -l stage -d 'investigating, identified, monitoring or resolved. Default: investigating while the incident is open, resolved once it is over' -r
complete -c coordinator -n "__fish_coordinator_using_subcommand draft" -l json -d 'Print the draft as one JSON object'
complete -c coordinator -n "__fish_coordinator_using_subcommand draft" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand migrate" -l data-dir -d 'The coordinator\'s data directory' -r -F
complete -c coordinator -n "__fish_coordinator_using_subcommand migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c coordinator -n "__fish_coordinator_using_subcommand completions" -s h -l help -d 'Print help'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "regions" -d 'List the region catalog, or check a catalog file (exit 2 when invalid)'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "run" -d 'Run the coordinator: the QUIC service for probes, until SIGINT or SIGTERM. SIGHUP (or editing the file) reloads the targets'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "validate" -d 'Check a configuration file and exit (0 valid, 2 invalid, every problem listed)'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "simulate" -d 'Run scenario files through the detection engine in virtual time and score them (exit 0 when every expectation is met, 1 when one is not, 2 for an unreadable or invalid file)'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "demo" -d 'Watch detection live: a coordinator and 30 simulated probes on 127.0.0.1 in real time, a scripted fiber cut, the incident detected, explained and resolved (exit 0 when it was, 1 when not, 2 when the demo could not run). Needs no network and no external service'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "token" -d 'Enrolment tokens'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "probe" -d 'The probe registry'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "user" -d 'Staff accounts of the web UI and API (viewer, community-manager, sre-admin) and their API tokens'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "maintenance" -d 'Maintenance windows: planned work during which incidents covered by them page nobody'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "incidents" -d 'List the incidents detection stored, oldest first: a table, or one JSON object per line'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "incident" -d 'One stored incident: its post-mortem'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "trends" -d 'Time to detect, resolve and (site incidents) communicate per UTC month and class over the stored incidents: median, p90 and count'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "message" -d 'Member messages: the drafts the coordinator offered for its incidents, and a person\'s edit, approval and publication of them. Nothing is published without approval'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "draft" -d 'Draft the member message of a stored incident, for a community manager to edit and publish (nothing is published): its class\'s wording at one stage, scoped with the regions\' member-facing names. Exit 1 when the incident does not exist or is a state of the monitoring network, which members never hear about'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "migrate" -d 'Bring a data directory\'s database up to this build\'s schema; print the versions before and after'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "completions" -d 'Print a shell completion script for bash, zsh, fish, elvish or powershell to standard output'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and not __fish_seen_subcommand_from regions run validate simulate demo token probe user maintenance incidents incident trends message draft migrate completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Print a one-time enrolment token for a region, and the CA fingerprint to pin'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from probe" -f -a "list" -d 'List enrolled probes'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from probe" -f -a "revoke" -d 'Revoke a probe: its certificate is refused from now on'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a user. Without --password-stdin a password is generated and printed once'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "list" -d 'List users and their roles'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "remove" -d 'Remove a user; their sessions and tokens end at once'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "role" -d 'Change a user\'s role (effective at their next request)'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Set a new password (generated and printed without --password-stdin); their sessions end'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from user" -f -a "token" -d 'Issue an API token for a user (sent as `Authorization: Bearer TOKEN`), printed once'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "list" -d 'List the windows: the configuration\'s (with --config) and the stored ones, with whether each is open now and its next occurrence'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "add" -d 'Schedule a window: one-off (--start, --end) or recurring (--every, --at, --duration). Checked against the configuration\'s targets and regions'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from maintenance" -f -a "remove" -d 'Remove a stored window; a page it held back goes out if the incident is still open'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from incident" -f -a "export" -d 'Write a stored incident\'s post-mortem: key moments and the timeline (detection\'s history, the member messages\' drafting, approval and publication), time to detect, communicate and resolve, the affected regions by their member-facing names, the evidence, the explanation and a chart of the round trip per minute (exit 1 when there is no such incident, 2 for a usage error)'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from incident" -f -a "note" -d 'Add a note to an incident\'s timeline and post-mortem ("rolled back the 14:02 deploy"). Notes are only ever added: a correction is another note'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from message" -f -a "list" -d 'List member messages, oldest first: id, incident, stage, state, title'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from message" -f -a "show" -d 'Print one message whole: its words and who did what when'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from message" -f -a "edit" -d 'Reword a message (title, text or both). An approved message needs approving again; a published one is never changed'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from message" -f -a "approve" -d 'Approve a draft as it reads now'
complete -c coordinator -n "__fish_coordinator_using_subcommand help; and __fish_seen_subcommand_from message" -f -a "publish" -d 'Publish an approved message: from now on it is public, and the incident\'s first publication is its time to communicate'
