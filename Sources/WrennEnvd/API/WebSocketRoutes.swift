import Hummingbird
import HummingbirdWebSocket

/// envd's WebSocket routes: exec stream, process attach and PTY. They sit behind the same auth middleware.
struct WebSocketRoutes: Sendable {
    let services: EnvdServices

    func register(on router: Router<EnvdRequestContext>) {
        let maxMessage = services.configuration.limits.maxClientMessage
        let execSocket = ExecStreamSocket(processes: services.processes)
        let attachSocket = ProcessAttachSocket(table: services.processes.table)
        let ptySocket = PTYSocket(ptys: services.ptys, pingInterval: services.configuration.ptyPingInterval)

        router.ws("/exec/stream") { inbound, outbound, context in
            var execSocket = execSocket
            execSocket.coding.settling = context.requestContext.settling
            try await execSocket.handle(inbound: inbound, outbound: outbound, maxMessage: maxMessage)
        }
        router.ws("/processes/:selector/stream") { inbound, outbound, context in
            var attachSocket = attachSocket
            attachSocket.coding.settling = context.requestContext.settling
            let selector = (try? EnvdRoutes.selector(context.requestContext)) ?? ""
            try await attachSocket.handle(selector: selector, inbound: inbound, outbound: outbound)
        }
        router.ws("/pty") { inbound, outbound, context in
            var ptySocket = ptySocket
            ptySocket.coding.settling = context.requestContext.settling
            try await ptySocket.handle(inbound: inbound, outbound: outbound, maxMessage: maxMessage)
        }
    }
}
