// User-interface strings. The server picks the language (lang= or the
// browser's Accept-Language, falling back to the server's own).
"use strict";
window.VIDICON_TEXT = {
  "en-US": {
    connecting: "Connecting…", reconnecting: "Reconnecting…", live: "Live",
    "camera offline": "Camera offline", "sign in": "Sign in", user: "User name",
    password: "Password", "sign out": "Sign out", channels: "Channels",
    "no channels": "No channels yet.",
    "sign in failed": "Sign-in failed",
    loading: "Loading…", playing: "Playback", paused: "Paused",
    "end of recordings": "End of recordings", "playback ended": "Playback ended",
    "skipped to": "No recording; skipped to", play: "Play", pause: "Pause",
    "previous frame": "Previous frame", "next frame": "Next frame", speed: "Speed",
    "previous day": "Previous day", "next day": "Next day", timeline: "Timeline",
    "zoom in": "Zoom in", "zoom out": "Zoom out",
  },
  "ko-KR": {
    connecting: "연결 중…", reconnecting: "다시 연결 중…", live: "실시간",
    "camera offline": "카메라 연결 끊김", "sign in": "로그인", user: "사용자 이름",
    password: "비밀번호", "sign out": "로그아웃", channels: "채널",
    "no channels": "채널이 없습니다.",
    "sign in failed": "로그인 실패",
    loading: "불러오는 중…", playing: "녹화 재생", paused: "일시 정지",
    "end of recordings": "녹화 끝", "playback ended": "재생 종료",
    "skipped to": "녹화 없음, 건너뜀:", play: "재생", pause: "일시 정지",
    "previous frame": "이전 프레임", "next frame": "다음 프레임", speed: "속도",
    "previous day": "이전 날", "next day": "다음 날", timeline: "타임라인",
    "zoom in": "확대", "zoom out": "축소",
  },
  "de-DE": {
    connecting: "Verbinde…", reconnecting: "Verbinde erneut…", live: "Live",
    "camera offline": "Kamera nicht erreichbar", "sign in": "Anmelden", user: "Benutzername",
    password: "Passwort", "sign out": "Abmelden", channels: "Kanäle",
    "no channels": "Noch keine Kanäle.",
    "sign in failed": "Anmeldung fehlgeschlagen",
    loading: "Lade…", playing: "Wiedergabe", paused: "Angehalten",
    "end of recordings": "Ende der Aufnahmen", "playback ended": "Wiedergabe beendet",
    "skipped to": "Keine Aufnahme; weiter bei", play: "Abspielen", pause: "Anhalten",
    "previous frame": "Vorheriges Bild", "next frame": "Nächstes Bild", speed: "Geschwindigkeit",
    "previous day": "Vorheriger Tag", "next day": "Nächster Tag", timeline: "Zeitleiste",
    "zoom in": "Vergrößern", "zoom out": "Verkleinern",
  },
};
window.vidiconText = function (lang, key) {
  const table = window.VIDICON_TEXT[lang] || window.VIDICON_TEXT["en-US"];
  return table[key] || window.VIDICON_TEXT["en-US"][key] || key;
};
