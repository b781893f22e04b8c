// User-interface strings. The server picks the language (lang= or the
// browser's Accept-Language, falling back to the server's own).
"use strict";
window.VIDICON_TEXT = {
  "en-US": {
    connecting: "Connecting…", reconnecting: "Reconnecting…", live: "Live",
    "camera offline": "Camera offline", "sign in": "Sign in", user: "User name",
    password: "Password", "sign out": "Sign out", channels: "Channels",
    "no channels": "No channels yet.", "not live": "Only live video (when=now) is available here yet.",
    "sign in failed": "Sign-in failed",
  },
  "ko-KR": {
    connecting: "연결 중…", reconnecting: "다시 연결 중…", live: "실시간",
    "camera offline": "카메라 연결 끊김", "sign in": "로그인", user: "사용자 이름",
    password: "비밀번호", "sign out": "로그아웃", channels: "채널",
    "no channels": "채널이 없습니다.", "not live": "아직 실시간 영상(when=now)만 볼 수 있습니다.",
    "sign in failed": "로그인 실패",
  },
  "de-DE": {
    connecting: "Verbinde…", reconnecting: "Verbinde erneut…", live: "Live",
    "camera offline": "Kamera nicht erreichbar", "sign in": "Anmelden", user: "Benutzername",
    password: "Passwort", "sign out": "Abmelden", channels: "Kanäle",
    "no channels": "Noch keine Kanäle.", "not live": "Hier gibt es bisher nur Live-Video (when=now).",
    "sign in failed": "Anmeldung fehlgeschlagen",
  },
};
window.vidiconText = function (lang, key) {
  const table = window.VIDICON_TEXT[lang] || window.VIDICON_TEXT["en-US"];
  return table[key] || window.VIDICON_TEXT["en-US"][key] || key;
};
