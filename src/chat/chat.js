// The chat room's one script (no inline scripts under herald's CSP): tells the room which
// message this reader has seen, when messages arrive while the page is visible, and when the
// page becomes visible again. It submits the hidden #chat-seen form, which htmx posts.
(() => {
  const list = document.getElementById("chat-messages");
  const form = document.getElementById("chat-seen");
  if (!list || !form) return;
  let told = "";
  let due = false;
  const tell = () => {
    due = false;
    if (document.visibilityState !== "visible") return;
    const last = list.lastElementChild?.getAttribute("data-id") ?? "";
    if (last === "" || last === told) return;
    told = last;
    form.elements.namedItem("upTo").value = last;
    form.requestSubmit();
  };
  const soon = () => {
    if (due) return;
    due = true;
    setTimeout(tell, 0);
  };
  new MutationObserver(soon).observe(list, { childList: true });
  document.addEventListener("visibilitychange", soon);
  soon();
})();
