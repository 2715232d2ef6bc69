import Hummingbird

/// The `wrenn_sid` / `wrenn_csrf` cookie pair.
///
/// `wrenn_sid` is HttpOnly; `wrenn_csrf` is readable by the dashboard's script so it can echo it in `X-CSRF-Token`.
/// Both are SameSite=Strict, Path=/, and Secure unless the public URL is plain http.
enum SessionCookies {
    static let sid = "wrenn_sid"
    static let csrf = "wrenn_csrf"

    static func set(_ issued: SessionService.Issued, secure: Bool, on response: inout Response) {
        let maxAge = Int(SessionService.absoluteLifetime)
        response.setCookie(Cookie(name: sid, value: issued.sid, maxAge: maxAge, path: "/", secure: secure, httpOnly: true, sameSite: .strict))
        response.setCookie(Cookie(name: csrf, value: issued.csrf, maxAge: maxAge, path: "/", secure: secure, httpOnly: false, sameSite: .strict))
    }

    static func clear(secure: Bool, on response: inout Response) {
        response.setCookie(Cookie(name: sid, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: true, sameSite: .strict))
        response.setCookie(Cookie(name: csrf, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: false, sameSite: .strict))
    }
}
