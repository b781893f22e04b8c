"""Channel status messages in each language, for ``/api/status`` and the
``channelStatus`` topic alike (the codes are TS-API's, ``core/status.py``)."""

from __future__ import annotations

from vidicon.api.dialects.ts_api.lang import ENGLISH
from vidicon.core.status import ChannelStatus as S

MESSAGES: dict[str, dict[S, str]] = {
    ENGLISH: {code: code.message for code in S},
    "ko-KR": {
        S.REBOOTING: "재부팅 중", S.RECONNECTING: "재연결 중", S.CONNECTING: "연결 중",
        S.LOADING: "로딩 중", S.NOT_USED: "사용 안 함", S.NO_RESPONSE: "응답 없음",
        S.USED: "사용 중", S.HAS_VIDEO: "영상 있음", S.CONNECTED: "연결됨",
        S.LOGIN_FAILED: "카메라 로그인 실패", S.BLOCKED: "카메라 차단됨",
        S.NO_NETWORK: "네트워크 연결 없음", S.TIMEOUT: "카메라 응답 시간 초과",
        S.NO_VIDEO: "영상 입력 없음", S.SERVICE_FAILURE: "카메라 서비스 장애",
        S.PLAYBACK_COMPLETE: "재생 완료", S.NO_FILE: "파일 없음",
    },
    "es-ES": {
        S.REBOOTING: "Reiniciando", S.RECONNECTING: "Reconectando", S.CONNECTING: "Conectando",
        S.LOADING: "Cargando", S.NOT_USED: "Sin usar", S.NO_RESPONSE: "Sin respuesta",
        S.USED: "En uso", S.HAS_VIDEO: "Con vídeo", S.CONNECTED: "Conectado",
        S.LOGIN_FAILED: "Error de inicio de sesión en la cámara", S.BLOCKED: "Cámara bloqueada",
        S.NO_NETWORK: "Sin conexión de red", S.TIMEOUT: "La cámara no responde a tiempo",
        S.NO_VIDEO: "Sin entrada de vídeo", S.SERVICE_FAILURE: "Fallo del servicio de la cámara",
        S.PLAYBACK_COMPLETE: "Reproducción completada", S.NO_FILE: "No se encontró el archivo",
    },
    "zh-CN": {
        S.REBOOTING: "正在重启", S.RECONNECTING: "正在重新连接", S.CONNECTING: "正在连接",
        S.LOADING: "正在加载", S.NOT_USED: "未使用", S.NO_RESPONSE: "无响应",
        S.USED: "已使用", S.HAS_VIDEO: "有视频", S.CONNECTED: "已连接",
        S.LOGIN_FAILED: "摄像机登录失败", S.BLOCKED: "摄像机已被阻止",
        S.NO_NETWORK: "无网络连接", S.TIMEOUT: "摄像机响应超时",
        S.NO_VIDEO: "无视频输入", S.SERVICE_FAILURE: "摄像机服务故障",
        S.PLAYBACK_COMPLETE: "播放完成", S.NO_FILE: "未找到文件",
    },
    "zh-TW": {
        S.REBOOTING: "正在重新啟動", S.RECONNECTING: "正在重新連線", S.CONNECTING: "正在連線",
        S.LOADING: "正在載入", S.NOT_USED: "未使用", S.NO_RESPONSE: "無回應",
        S.USED: "已使用", S.HAS_VIDEO: "有視訊", S.CONNECTED: "已連線",
        S.LOGIN_FAILED: "攝影機登入失敗", S.BLOCKED: "攝影機已封鎖",
        S.NO_NETWORK: "無網路連線", S.TIMEOUT: "攝影機回應逾時",
        S.NO_VIDEO: "無視訊輸入", S.SERVICE_FAILURE: "攝影機服務故障",
        S.PLAYBACK_COMPLETE: "播放完畢", S.NO_FILE: "找不到檔案",
    },
}  # fmt: skip
