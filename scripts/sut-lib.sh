# Sourced by the scripts that drive ../shared/sut (needs $SUT): starts the system and,
# when the script exits however it exits, stops it and any recorder the script left
# running (its pid in $recorder).
recorder=""
sut_cleanup() {
  [ -n "$recorder" ] && kill "$recorder" 2>/dev/null || true
  bash "$SUT/run_sut.sh" stop >/dev/null || true
}
trap sut_cleanup EXIT
bash "$SUT/run_sut.sh" start >/dev/null
