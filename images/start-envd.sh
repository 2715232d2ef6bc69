#!/bin/sh
# Started (and restarted when it exits) by init. envd reads its settings from the environment.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
WRENN_ENVD_PORT=49983
WRENN_DEFAULT_USER=wrenn-user
export PATH HOME WRENN_ENVD_PORT WRENN_DEFAULT_USER
echo "WRENN-ENVD-START uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
/usr/local/bin/wrenn-envd >> /var/log/wrenn-envd.log 2>&1
status=$?
echo "WRENN-ENVD-EXIT status=$status" > /dev/console
sleep 1
