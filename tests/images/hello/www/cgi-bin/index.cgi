#!/bin/sh
# busybox httpd runs /cgi-bin/index.cgi for `/` when there is no index.html.
printf 'Content-Type: text/plain\r\n\r\n'
echo "hello v$(cat /etc/hello-version)"
if [ -n "$MESSAGE" ]; then echo "message: $MESSAGE"; fi
