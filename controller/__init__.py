"""The call controller: Event Socket links to FreeSWITCH nodes, dialling, dialogue, transfer."""
