"""Texts of the real-time event messages: channel status messages and system log names.

The channel status codes are TS-API's own list (``vidicon.core.status``).
System log numbers: 1, 2, 3 and 25 are the spec's own (start-up, shutdown,
abnormal shutdown, storage ready); the rest of what Vidicon logs
has no number in the spec and gets one from 101 up, so it cannot be mistaken
for a vendor code.
"""

from __future__ import annotations

from vidicon.core.event_codes import SystemCode
from vidicon.core.status import ChannelStatus

SYSTEM_LOG_TYPE = 0
SYSTEM_NUMBERS: dict[str, int] = {
    SystemCode.STARTUP: 1,
    SystemCode.SHUTDOWN: 2,
    SystemCode.ABNORMAL_SHUTDOWN: 3,
    SystemCode.STORAGE_READY: 25,
    SystemCode.STORAGE_FULL: 101,
    SystemCode.STORAGE_ERROR: 102,
    SystemCode.FOOTAGE_DELETED: 103,
}
OTHER_SYSTEM_NUMBER = 100  # a system code this table does not know

STATUS_TEXTS: dict[str, dict[int, str]] = {
    "en-US": {int(s): s.message for s in ChannelStatus},
    "ko-KR": {
        -5: "재부팅 중", -4: "재연결 중", -3: "연결 중", -2: "로딩 중", -1: "사용 안 함",
        0: "응답 없음", 1: "사용", 2: "영상 있음", 200: "연결됨", 401: "카메라 로그인 실패",
        403: "카메라 차단됨", 404: "네트워크 연결 없음", 408: "카메라 응답 시간 초과",
        410: "영상 입력 없음", 503: "카메라 서비스 장애", 1000: "재생 완료", 1404: "파일 없음",
    },
    "es-ES": {
        -5: "Reiniciando", -4: "Reconectando", -3: "Conectando", -2: "Cargando",
        -1: "No se usa", 0: "Sin respuesta", 1: "En uso", 2: "Hay vídeo", 200: "Conectado",
        401: "Error de inicio de sesión de la cámara", 403: "Cámara bloqueada",
        404: "Sin conexión de red", 408: "La cámara no responde a tiempo",
        410: "Sin entrada de vídeo", 503: "Fallo del servicio de la cámara",
        1000: "Reproducción completa", 1404: "No se encontró el archivo",
    },
    "zh-CN": {
        -5: "正在重启", -4: "正在重新连接", -3: "正在连接", -2: "正在加载", -1: "未使用",
        0: "无响应", 1: "已使用", 2: "有视频", 200: "已连接", 401: "摄像机登录失败",
        403: "摄像机被阻止", 404: "无网络连接", 408: "摄像机响应超时", 410: "无视频输入",
        503: "摄像机服务故障", 1000: "播放完成", 1404: "未找到文件",
    },
    "zh-TW": {
        -5: "正在重新開機", -4: "正在重新連線", -3: "正在連線", -2: "正在載入", -1: "未使用",
        0: "無回應", 1: "已使用", 2: "有影像", 200: "已連線", 401: "攝影機登入失敗",
        403: "攝影機被封鎖", 404: "無網路連線", 408: "攝影機回應逾時", 410: "無影像輸入",
        503: "攝影機服務故障", 1000: "播放完成", 1404: "找不到檔案",
    },
}  # fmt: skip

SYSTEM_TEXTS: dict[str, dict[int, str]] = {
    "en-US": {
        SYSTEM_LOG_TYPE: "System log", 1: "System startup", 2: "System shutdown",
        3: "Abnormal shutdown", 25: "Storage ready", 100: "System event", 101: "Storage full",
        102: "Storage error",
        103: "Old recordings deleted",
    },
    "ko-KR": {
        SYSTEM_LOG_TYPE: "시스템 로그", 1: "시스템 시작", 2: "시스템 종료", 3: "비정상 종료",
        25: "저장소 준비",
        100: "시스템 이벤트", 101: "저장 공간 부족", 102: "저장소 오류",
        103: "오래된 녹화 삭제",
    },
    "es-ES": {
        SYSTEM_LOG_TYPE: "Registro del sistema", 1: "Inicio del sistema",
        2: "Apagado del sistema", 3: "Apagado anormal", 25: "Almacenamiento listo",
        100: "Evento del sistema",
        101: "Almacenamiento lleno", 102: "Error de almacenamiento",
        103: "Grabaciones antiguas eliminadas",
    },
    "zh-CN": {
        SYSTEM_LOG_TYPE: "系统日志", 1: "系统启动", 2: "系统关闭", 3: "异常关机", 25: "存储就绪",
        100: "系统事件", 101: "存储空间已满", 102: "存储错误", 103: "已删除旧录像",
    },
    "zh-TW": {
        SYSTEM_LOG_TYPE: "系統日誌", 1: "系統啟動", 2: "系統關閉", 3: "異常關機",
        25: "儲存裝置就緒",
        100: "系統事件", 101: "儲存空間已滿", 102: "儲存裝置錯誤", 103: "已刪除舊錄影",
    },
}  # fmt: skip


def system_number(code: str) -> int:
    return SYSTEM_NUMBERS.get(code, OTHER_SYSTEM_NUMBER)
