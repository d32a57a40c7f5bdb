#!/bin/sh
# nightly-wrapper.sh -- an alternative crontab target that turns the exit code
# into a one-line subject for cron mail (the highest code that applies wins:
# 5 over 4 over 3); use it as
#   15 6 * * *  flock -n /var/lock/nightshift-nightly.lock /usr/local/bin/nightly-wrapper.sh
set -u
night=$(date -d yesterday +%F)
nightshift nightly --config /etc/nightshift/nightly.yaml --night "$night"
rc=$?
case $rc in
  0) echo "nightshift $night: nothing needs a human" ;;
  3) echo "nightshift $night: SHIFT or novel condition: open the morning page" ;;
  4) echo "nightshift $night: a labeling batch is waiting: send it to the labelers" ;;
  5) echo "nightshift $night: a candidate head was gated PROMOTE: review and promote" ;;
  75) echo "nightshift $night: store busy, another run holds it" ;;
  143) echo "nightshift $night: stopped by SIGTERM, rerun resumes" ;;
  *) echo "nightshift $night: FAILED with exit $rc" ;;
esac
exit $rc
