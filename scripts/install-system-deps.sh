#!/usr/bin/env bash
# Installs the Debian packages the test suite and benchmarks need:
# FFmpeg (ffprobe checks every file we write) and GStreamer's RTSP server,
# which plays the independent IP camera in integration tests, and Chromium,
# the browser that plays our pages in the live tests (driven by Playwright),
# and VLC (headless cvlc with its base plugins), a third-party player of our
# RTSP restream and LL-HLS, and Mosquitto, the MQTT broker of the notification
# tests.
# smartctl (smartmontools) reads disk health for TS-API's /api/system?hddsmart.
set -euo pipefail

packages=(
  ffmpeg
  python3-gi
  gir1.2-gst-rtsp-server-1.0
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-tools
  chromium
  vlc-bin
  vlc-plugin-base
  mosquitto
  smartmontools
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
