// Shared by every page of the demo: the connection state in the header, and the signed-in
// user's notifications (notify_user -> event "notification" on the private channel user.{id}).
// window.Echo was created by {% broadcasting_client %}, whose module script runs before this one.
const echo = window.Echo;
const stateBadge = document.getElementById("connection-state");

// data-* attributes on <body> say which channels are subscribed right now (tests wait on them).
function showState(state) {
  stateBadge.textContent = state;
  stateBadge.dataset.state = state;
  if (state !== "connected") document.body.removeAttribute("data-notifications");
}
showState(echo.state);
echo.onStateChange((state) => showState(state));

const userId = document.body.dataset.userId;
if (userId) {
  const toasts = document.getElementById("toasts");
  const list = document.getElementById("notifications"); // only on the notifications page
  const channel = echo.private(`user.${userId}`);
  channel.subscribed(() => { document.body.dataset.notifications = "subscribed"; });
  channel.notification((n) => {
    const toast = document.createElement("div");
    toast.className = "toast notification";
    const title = document.createElement("strong");
    title.textContent = n.title;
    const body = document.createElement("span");
    body.textContent = ` ${n.message}`;
    toast.append(title, body);
    if (n.action_url) {
      const link = document.createElement("a");
      link.href = n.action_url;
      link.textContent = " Open";
      toast.append(link);
    }
    toasts.append(toast);
    toast.addEventListener("click", () => toast.remove());
    if (list) {
      const item = document.createElement("li");
      item.className = "notification";
      item.textContent = `${new Date(n.timestamp).toLocaleTimeString()}: ${n.title}: ${n.message}`;
      list.prepend(item);
    }
  });
}
