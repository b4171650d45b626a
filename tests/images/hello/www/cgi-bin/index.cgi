#!/bin/sh
# busybox httpd runs /cgi-bin/index.cgi for `/` when there is no index.html.
# A Content-Length lets the router keep client connections alive (httpd itself closes).
body="hello v$(cat /etc/hello-version)"
if [ -n "$MESSAGE" ]; then body="$body
message: $MESSAGE"; fi
printf 'Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s\n' "$((${#body} + 1))" "$body"
