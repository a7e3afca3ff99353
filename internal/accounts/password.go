// Package accounts is the one reader of a root's account database
// (etc/passwd, etc/group, etc/shadow) and the one place its rules live:
// how entries are parsed, how owners resolve, what a locked password
// field is.
package accounts

// LockedField is the shadow password field flint gives an account
// whose password is locked. It is "*", not "!": sshd without PAM treats a
// field starting with "!" as a locked account and refuses even key
// logins, while "*" only means no password can match.
const LockedField = "*"

// PasswordField says what the account's shadow password field must
// become: LockedField when locked (or when useradd left the "!" that
// would block key logins without PAM), "" when it stays as it is.
// current is the field now; set reports whether a password is being set
// for the user.
func PasswordField(lock bool, current string, set bool) string {
	switch {
	case lock && current != LockedField:
		return LockedField
	case lock, set:
		return ""
	case current == "!" || current == "!!" || current == "!*":
		return LockedField
	}
	return ""
}
