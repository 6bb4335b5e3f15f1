"use strict";
// The console's queue management: the queue table (sorted and paged by the
// queues API), a queue's page (#/queue/NAME), Create queue (#/create) and
// the purge and delete dialog. It uses the page's helpers ($, esc, nm, iso,
// date, morph, setText, act, READ_ONLY); the page calls Q.state(state) on
// each read of /api/state.
const Q = (() => {
  // A request of the queues API; always answers {ok, error?, ...}.
  async function api(method, path, body) {
    try {
      if (method === "GET") {
        const r = await fetch(path, { cache: "no-store" });
        return await r.json().catch(() => ({ ok: false, error: `HTTP ${r.status}` }));
      }
      return await act(path, body || {}, method);
    } catch (e) { return { ok: false, error: "cannot reach the console: " + e.message }; }
  }
  // A failure in plain words, with SQS's own code when there is one.
  const failure = j => j.error + (j.sqs_code ? ` (SQS error code ${j.sqs_code})` : "");
  const qpath = name => "/api/queues/" + encodeURIComponent(name);
  const say = (el, text, ok) => { el.textContent = text; el.className = ok == null ? "muted" : ok ? "ok" : "error"; };
  const num = v => v === "" || v == null ? null : Number(v);
  const arnName = arn => String(arn || "").split(":").pop();
  const fifoOf = name => name.endsWith(".fifo");

  // ---------------------------------------------------------------- table
  const T = { sort: "name", order: "asc", size: 25, cursors: [null], rows: [], next: null, total: 0,
              selected: new Set(), counts: new Map(), ends: [], api: new Map(), prefix: "", seq: 0, fetched: 0,
              started: false };

  // A row's counts come from two sources: the console's reads of SQS
  // (T.counts, from /api/state, each --interval) and the
  // queues API (T.api: the table's pages, every 10 s, and a queue's counts
  // read right after an action on it). Each shows the newest: the API's
  // counts, read at read_ms by the console's clock, give way to the state's
  // once two reads of the console have ended after read_ms (the second of
  // them began after the first ended: all of it is newer). T.ends: when the
  // last two good reads of the console ended.
  function fresher(name, c) {
    const old = T.api.get(name);
    if (c.read_ms != null && (!old || old.read_ms <= c.read_ms)) T.api.set(name, c);
  }
  function shown(name) {
    const a = T.api.get(name) || {}, c = T.counts.get(name);
    const live = c && T.ends.length === 2 && (a.read_ms == null || T.ends[0] > a.read_ms);
    return { visible: (live ? c.messages_available : null) ?? a.visible, in_flight: (live ? c.messages_in_flight : null) ?? a.in_flight,
             delayed: (live ? c.messages_delayed : null) ?? a.delayed };
  }
  // A queue's counts, read after an action on it: its row (and the counts
  // on its page) show the change now rather than at the next read. One
  // request of the console (two of SQS) an action; nothing is polled.
  async function recount(name) {
    const j = await api("GET", qpath(name) + "/counts");
    if (!j.ok) return;
    fresher(name, { visible: j.visible, in_flight: j.in_flight, delayed: j.delayed, read_ms: j.read_ms });
    if (!$("#home").hidden) draw();
    if (QP && QP.name === name && QP.d) {
      const a = QP.d.attributes;
      [["ApproximateNumberOfMessages", j.visible], ["ApproximateNumberOfMessagesNotVisible", j.in_flight],
       ["ApproximateNumberOfMessagesDelayed", j.delayed]].forEach(([k, v]) => {
        if (v == null || !(k in a)) return;
        a[k] = String(v);
        const el = $(`#qp-details [data-attr="${k}"] span`);
        if (el) setText(el, a[k]);
      });
    }
  }

  // The prefix asked of the API: the filter within the console's --prefix
  // (null: nothing can match).
  function prefix() {
    const typed = $("#filter").value.trim(), own = T.prefix;
    if (!own || typed.startsWith(own)) return typed;
    return own.startsWith(typed) ? own : null;
  }

  async function load() {
    const seq = ++T.seq, p = prefix();
    T.fetched = Date.now();
    if (p === null) { T.rows = []; T.total = 0; T.next = null; draw(); return; }
    const j = await api("POST", "/api/queues/search", { prefix: p, sort: T.sort, order: T.order,
      page_size: T.size, cursor: T.cursors[T.cursors.length - 1] });
    if (seq !== T.seq) return;
    setText($("#table-error"), j.ok ? "" : "Cannot list the queues: " + failure(j));
    if (!j.ok) return;
    T.rows = j.queues; T.next = j.next_cursor; T.total = j.total;
    for (const q of j.queues) fresher(q.name, { visible: q.visible, in_flight: q.in_flight, delayed: q.delayed, read_ms: j.read_ms });
    draw();
  }
  const restart = () => { T.cursors = [null]; T.selected.clear(); load(); };

  function draw() {
    const rows = T.rows.map(q => {
      const c = shown(q.name);
      const cbd = q.content_based_deduplication == null ? "-" : q.content_based_deduplication ? "Enabled" : "Disabled";
      const b = q.barrier ? `${nm(q.barrier.name)} <span class="muted">(${esc(q.barrier.role)})</span>` : "";
      return `<tr data-key="${esc(q.name)}" data-queue="${esc(q.name)}"><td class="pick"><input type="checkbox" value="${esc(q.name)}" aria-label="${esc("select " + iso(q.name))}"${T.selected.has(q.name) ? " checked" : ""}></td>` +
        `<td class="qname"><a href="#/queue/${encodeURIComponent(q.name)}">${nm(q.name)}</a>${quick(q.name)}</td><td>${esc(q.type)}</td>` +
        `<td class="created">${q.created == null ? "–" : esc(date(q.created * 1000))}</td><td class="num">${c.visible ?? "–"}</td>` +
        `<td class="num">${c.in_flight ?? "–"}</td><td class="num">${c.delayed ?? "–"}</td>` +
        `<td>${esc(q.encryption)}</td><td>${cbd}</td><td class="barrier-of">${b}</td></tr>`;
    });
    morph($("#queues tbody"), rows.join("") || '<tr><td></td><td colspan="9" class="muted">No queue matches.</td></tr>');
    const page = T.cursors.length, first = (page - 1) * T.size;
    setText($("#queue-count"), T.rows.length ? `${first + 1}–${first + T.rows.length} of ${T.total} queues` : `0 of ${T.total} queues`);
    setText($("#page-no"), `Page ${page}`);
    $("#prev-page").disabled = page === 1;
    $("#next-page").disabled = !T.next;
    document.querySelectorAll("#queues th[data-sort]").forEach(th => {
      const on = th.dataset.sort === T.sort;
      th.setAttribute("aria-sort", on ? (T.order === "asc" ? "ascending" : "descending") : "none");
      setText($(".arrow", th), on ? (T.order === "asc" ? " ▲" : " ▼") : "");
    });
    buttons();
    scrollHint();
  }

  // Each row's quick actions: a menu that opens in the row.
  function quick(name) {
    if (READ_ONLY) return "";
    const b = (what, label) => `<button type="button" data-qa="${what}" data-q="${esc(name)}">${label}</button>`;
    return ` <details class="qa"><summary aria-label="${esc("actions on " + iso(name))}" title="actions">⋯</summary><div class="qa-menu">` +
      b("edit", "Edit") + b("messages", "Send and receive messages") + b("purge", "Purge…") + b("delete", "Delete…") + "</div></details>";
  }
  $("#queues tbody").addEventListener("click", ev => {
    const b = ev.target.closest("button[data-qa]");
    if (!b) return;
    b.closest("details").open = false;
    const name = b.dataset.q, what = b.dataset.qa;
    if (what === "purge" || what === "delete") removal(name, what, rowOf(name)?.barrier);
    else location.hash = `#/queue/${encodeURIComponent(name)}/${what}`;
  });

  // The toolbar acts on one selected queue.
  function buttons() {
    const one = T.selected.size === 1;
    ["#q-edit", "#q-delete", "#q-purge", "#q-messages"].forEach(s => { $(s).disabled = !one; });
    setText($("#q-selected"), T.selected.size ? `${T.selected.size} selected` + (one ? "" : ": select one queue") : "");
  }
  const chosen = () => [...T.selected][0];
  const rowOf = name => T.rows.find(r => r.name === name);

  $("#queues tbody").addEventListener("change", ev => {
    const box = ev.target.closest("input[type=checkbox]");
    if (!box) return;
    if (box.checked) T.selected.add(box.value); else T.selected.delete(box.value);
    buttons();
  });
  $("#queues thead").addEventListener("click", ev => {
    const th = ev.target.closest("th[data-sort]");
    if (!th || !ev.target.closest("button")) return;
    if (T.sort === th.dataset.sort) T.order = T.order === "asc" ? "desc" : "asc";
    else { T.sort = th.dataset.sort; T.order = "asc"; }
    restart();
  });
  $("#next-page").addEventListener("click", () => { if (T.next) { T.cursors.push(T.next); T.selected.clear(); load(); } });
  $("#prev-page").addEventListener("click", () => { if (T.cursors.length > 1) { T.cursors.pop(); T.selected.clear(); load(); } });
  $("#page-size").addEventListener("change", ev => { T.size = Number(ev.target.value); restart(); });
  let typing = null;
  $("#filter").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(restart, 250); });
  $("#q-create").addEventListener("click", () => { location.hash = "#/create"; });
  $("#q-edit").addEventListener("click", () => { location.hash = `#/queue/${encodeURIComponent(chosen())}/edit`; });
  $("#q-messages").addEventListener("click", () => { location.hash = `#/queue/${encodeURIComponent(chosen())}/messages`; });
  $("#q-purge").addEventListener("click", () => removal(chosen(), "purge", rowOf(chosen())?.barrier));
  $("#q-delete").addEventListener("click", () => removal(chosen(), "delete", rowOf(chosen())?.barrier));

  // -------------------------------------------------------- purge, delete
  const dialog = $("#confirm-dialog");
  let pending = null;
  async function removal(name, action, barrier) {
    pending = { name, action };
    const verb = action === "purge" ? "Purge" : "Delete";
    setText($("#rm-title"), `${verb} queue `);
    $("#rm-title").insertAdjacentHTML("beforeend", nm(name) + "?");
    setText($("#rm-what"), action === "purge"
      ? "Every message in the queue is deleted, for good (SQS takes up to 60 s; another purge is refused for 60 s)."
      : "The queue and every message in it are deleted, for good; SQS refuses a new queue of this name for 60 s.");
    $("#rm-barrier").hidden = true;
    $("#rm-ack").checked = false;
    $("#rm-confirm").value = "";
    setText($("#rm-name"), name);
    setText($("#rm-go"), verb);
    $("#rm-go").disabled = true;
    say($("#rm-error"), "");
    dialog.showModal();
    $("#rm-confirm").focus();
    if (barrier) {
      const d = QP && QP.name === name && QP.d ? QP.d : await api("GET", qpath(name));
      if (d.ok && d.barrier) explain(d.barrier.name, d.barrier.role, action === "purge" ? d.barrier.purge_effect : d.barrier.delete_effect, d.barrier.teardown);
    }
  }
  function explain(barrier, role, effect, teardown) {
    const el = $("#rm-barrier");
    morph($("#rm-effect"), `${nm(pending.name)} is the ${esc(role)} queue of barrier ${nm(barrier)}: ${esc(effect)}. ` +
      `To remove the barrier whole, run <code>${esc(teardown)}</code> instead.`);
    setText($("#rm-ack-text"), `I understand what this does to barrier ${iso(barrier)}, and want to ${pending.action} this queue anyway`);
    el.hidden = false;
    ready();
  }
  // Confirm: once the queue's name is typed and, for a barrier's queue,
  // the acknowledgement ticked (the API refuses without it, too).
  const ready = () => {
    $("#rm-go").disabled = !pending || $("#rm-confirm").value !== pending.name || (!$("#rm-barrier").hidden && !$("#rm-ack").checked);
  };
  $("#rm-confirm").addEventListener("input", ready);
  $("#rm-ack").addEventListener("change", ready);
  $("#rm-cancel").addEventListener("click", () => dialog.close());
  $("#rm-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    if ($("#rm-go").disabled) return;
    const { name, action } = pending;
    $("#rm-go").disabled = true;
    say($("#rm-error"), action === "purge" ? "purging…" : "deleting…");
    const body = { confirm: $("#rm-confirm").value, barrier_ack: $("#rm-ack").checked };
    const j = action === "purge" ? await api("POST", qpath(name) + "/purge", body) : await api("DELETE", qpath(name), body);
    if (!j.ok) {
      say($("#rm-error"), failure(j), false);
      if (j.details && j.details.barrier) explain(j.details.barrier, j.details.role, j.details.effect, j.details.teardown);
      ready();
      return;
    }
    dialog.close();
    notice(action === "purge" ? `Purged ${iso(name)}: ${j.note}` : `Deleted ${iso(name)}: ${j.note}`);
    T.selected.delete(name);
    if (action === "delete") { T.api.delete(name); if (location.hash.startsWith("#/queue/")) location.hash = "#/"; else load(); }
    else recount(name);
  });
  let noticed = null;
  const notice = text => { setText($("#notice"), text); clearTimeout(noticed); noticed = setTimeout(() => setText($("#notice"), ""), 15000); };

  // ---------------------------------------------------------- queue page
  let QP = null;  // {name, d: the details}
  const EDITABLE = [
    ["VisibilityTimeout", "Visibility timeout", "seconds, 0 to 43200"],
    ["MessageRetentionPeriod", "Message retention period", "seconds, 60 to 1209600"],
    ["MaximumMessageSize", "Maximum message size", "bytes, 1024 to 1048576"],
    ["DelaySeconds", "Delivery delay", "seconds, 0 to 900"],
    ["ReceiveMessageWaitTimeSeconds", "Receive message wait time", "seconds, 0 to 20"],
  ];
  const field = (id, label, input, hint) => `<div class="field"><label for="${id}">${label}</label>${input}${hint ? `<span class="muted hint">${hint}</span>` : ""}</div>`;
  const numInput = (id, min, max, extra) => `<input type="number" id="${id}" name="${id}" min="${min}" max="${max}"${extra || ""}>`;
  const encryptionSelect = (id, withDefault) => `<select id="${id}">${withDefault ? '<option value="">SQS default (SSE-SQS)</option>' : ""}<option value="sqs">SSE-SQS (managed by SQS)</option><option value="kms">SSE-KMS (a KMS key)</option><option value="off">Disabled</option></select>`;

  function skeleton(name) {
    const fifo = fifoOf(name), ro = READ_ONLY ? " hidden" : "";
    const ranges = EDITABLE.map(([a, label, hint]) => field("ed-" + a, label, `<input type="number" id="ed-${a}" min="0">`, hint)).join("");
    $("#queue-page").innerHTML = `<p><a href="#/">← Queues</a></p>
      <h2 class="qp-title">Queue ${nm(name)} <span class="badge muted">${fifo ? "FIFO" : "Standard"}</span></h2>
      <div class="toolbar"${ro}><button type="button" id="qp-edit">Edit</button> <button type="button" id="qp-send">Send and receive messages</button>
        <button type="button" id="qp-purge">Purge…</button> <button type="button" id="qp-delete" class="danger">Delete…</button></div>
      <p id="qp-error" class="error" role="alert"></p>
      <section class="card" id="qp-barrier" hidden></section>
      <section class="card"><h3>Details</h3><div class="grid" id="qp-details">loading…</div></section>
      <section class="card" id="qp-edit-box"${ro}><h3>Edit</h3>
        <form id="edit-form" class="fields">${ranges}
          ${fifo ? field("ed-cbd", "Content-based deduplication", '<input type="checkbox" id="ed-cbd">', "a message's deduplication id is the SHA-256 of its body") : ""}
          ${field("ed-enc", "Encryption", encryptionSelect("ed-enc"))}${field("ed-kms", "KMS key (SSE-KMS)", '<input type="text" id="ed-kms" placeholder="alias/aws/sqs">')}
          ${field("ed-dlq", "Dead-letter queue", '<input type="text" id="ed-dlq" placeholder="none">', "a queue name or ARN; empty: none")}
          ${field("ed-mrc", "Maximum receives", '<input type="number" id="ed-mrc" min="1" max="1000">', "before a message moves to the dead-letter queue")}
          ${field("ed-allow", "Redrive allow policy", '<select id="ed-allow"><option value="">not set (allow all)</option><option value="allowAll">allowAll</option><option value="denyAll">denyAll</option><option value="byQueue">byQueue</option></select>', "which queues may use this one as their dead-letter queue")}
          ${field("ed-sources", "Source queues (byQueue)", '<input type="text" id="ed-sources">', "names or ARNs, separated by commas")}
          <div class="buttons"><button type="submit">Save</button><span id="edit-result" role="status"></span></div>
        </form></section>
      <section class="card"><h3>Tags</h3><div id="qp-tags"></div>
        <form id="tag-form" class="inline"${ro}><label for="tag-key">Key</label><input type="text" id="tag-key" required maxlength="128">
          <label for="tag-value">Value</label><input type="text" id="tag-value" maxlength="256"><button type="submit">Add tag</button></form>
        <p id="tag-result" role="status"></p></section>
      <section class="card" id="qp-messages"${ro}><h3>Send and receive messages</h3>
        <form id="send-form" class="fields">
          <div class="field wide"><label for="send-body">Message body</label><textarea id="send-body" rows="3" required></textarea></div>
          <fieldset class="wide"><legend>Message attributes</legend><div id="send-attrs"></div><button type="button" id="add-attr">Add attribute</button></fieldset>
          ${fifo ? field("send-group", "Message group ID", '<input type="text" id="send-group" required>') + field("send-dedup", "Deduplication ID", '<input type="text" id="send-dedup">', "not needed with content-based deduplication")
                 : field("send-delay", "Delivery delay", numInput("send-delay", 0, 900), "seconds")}
          <div class="buttons"><button type="submit">Send message</button><span id="send-result" role="status"></span></div>
        </form>
        <form id="poll-form" class="inline">
          <label for="poll-secs">Polling duration (s)</label>${numInput("poll-secs", 0, 120, ' value="5"')}
          <label for="poll-count">Maximum messages</label>${numInput("poll-count", 1, 100, ' value="10"')}
          <button type="submit">Poll for messages</button></form>
        <p id="poll-result" role="status"></p>
        <div id="poll-messages"></div></section>
      <section class="card" id="qp-redrive"><h3>Dead-letter redrive</h3><p id="redrive-sources" class="muted"></p>
        <form id="redrive-form" class="inline"${ro}><label for="redrive-dest">Destination</label><input type="text" id="redrive-dest" placeholder="the source queues">
          <label for="redrive-rate">Messages a second</label>${numInput("redrive-rate", 1, 500, ' placeholder="no limit"')}
          <button type="submit">Start redrive</button></form>
        <p id="redrive-result" role="status"></p><div id="redrive-tasks"></div></section>
      <section class="card"><h3>Lambda triggers</h3><p id="qp-lambda" class="muted"></p></section>`;
    $("#qp-edit").addEventListener("click", () => go("edit"));
    $("#qp-send").addEventListener("click", () => go("messages"));
    $("#qp-purge").addEventListener("click", () => removal(name, "purge", QP.d && QP.d.barrier));
    $("#qp-delete").addEventListener("click", () => removal(name, "delete", QP.d && QP.d.barrier));
    $("#edit-form").addEventListener("submit", save);
    $("#tag-form").addEventListener("submit", addTag);
    $("#qp-tags").addEventListener("click", removeTag);
    $("#add-attr").addEventListener("click", () => attrRow());
    $("#send-attrs").addEventListener("click", ev => { if (ev.target.closest(".drop")) ev.target.closest(".attr").remove(); });
    $("#send-form").addEventListener("submit", send);
    $("#poll-form").addEventListener("submit", poll);
    $("#redrive-form").addEventListener("submit", redrive);
    $("#redrive-tasks").addEventListener("click", cancelTask);
    attrRow();
  }
  function go(section) {
    const box = $(section === "edit" ? "#qp-edit-box" : "#qp-messages");
    if (!box || box.hidden) return;
    box.scrollIntoView({ block: "start" });
    const first = $("input, textarea", box);
    if (first) first.focus({ preventScroll: true });
  }

  async function openQueue(name, section) {
    if (!QP || QP.name !== name || !$("#queue-page").firstChild) { QP = { name, d: null, polled: [] }; skeleton(name); }
    await details();
    if (section) go(section);
  }

  async function details() {
    const name = QP.name;
    let d = await api("GET", qpath(name));
    // A read throttled (the tags count against SQS's tagging quota) is
    // tried again, twice, a second apart.
    for (let i = 0; i < 2 && !d.ok && /throttl/i.test(d.sqs_code || ""); i++) {
      await new Promise(r => setTimeout(r, 1000));
      d = await api("GET", qpath(name));
    }
    if (!QP || QP.name !== name) return;
    setText($("#qp-error"), d.ok ? "" : `Cannot read ${iso(name)}: ` + failure(d));
    if (!d.ok) return;
    QP.d = d;
    const a = d.attributes, kv = (k, v) => `<div class="kv"><b>${k}</b><span>${v}</span></div>`;
    const when = s => s ? esc(date(Number(s) * 1000)) : "–";
    let h = kv("Name", nm(d.name)) + kv("Type", esc(d.type)) + kv("URL", esc(d.url)) + kv("ARN", esc(d.arn || "–"));
    h += kv("Created", when(a.CreatedTimestamp)) + kv("Last modified", when(a.LastModifiedTimestamp));
    h += kv("Dead-letter queue", d.redrive_policy ? `${nm(arnName(d.redrive_policy.deadLetterTargetArn))} after ${esc(d.redrive_policy.maxReceiveCount)} receives` : "none");
    h += kv("Redrive allow policy", d.redrive_allow_policy ? esc(d.redrive_allow_policy.redrivePermission) +
      (d.redrive_allow_policy.sourceQueueArns ? ": " + d.redrive_allow_policy.sourceQueueArns.map(s => nm(arnName(s))).join(", ") : "") : "not set");
    h += kv("Dead-letter queue of", d.dead_letter_sources == null ? "unknown" : d.dead_letter_sources.map(nm).join(", ") || "no queue");
    for (const k of Object.keys(a).sort()) if (!["CreatedTimestamp", "LastModifiedTimestamp", "QueueArn", "RedrivePolicy", "RedriveAllowPolicy"].includes(k)) h += `<div class="kv attr" data-attr="${esc(k)}"><b>${esc(k)}</b><span>${esc(a[k])}</span></div>`;
    morph($("#qp-details"), h);
    barrierBox(d.barrier);
    fillEdit(d);
    tagTable(d.tags);
    setText($("#qp-lambda"), d.lambda_triggers.note);
    setText($("#redrive-sources"), d.dead_letter_sources && d.dead_letter_sources.length
      ? `The dead-letter queue of ${d.dead_letter_sources.map(iso).join(", ")}: a redrive moves its messages back to them, or to the destination given.`
      : "No queue uses this one as its dead-letter queue (as far as SQS says): a redrive moves messages to their source queues, or to the destination given.");
    tasks();
  }

  function barrierBox(b) {
    const box = $("#qp-barrier");
    box.hidden = !b;
    if (!b) return;
    const c = b.coordinator || {};
    const who = c.kind === "lambda" ? `a Lambda function, ${nm(c.where)}` : c.kind === "process" ? `a process, on ${nm(c.where)}` : "unknown";
    morph(box, `<h3>Barrier ${nm(b.name)} <span class="badge warn">${esc(b.role)} queue</span></h3>
      <p>This queue carries ${esc(b.purpose)}.</p>
      <div class="grid"><div class="kv"><b>Coordinated by</b><span class="coordinated-by">${who}${c.stopped ? " (stopped)" : ""}</span></div>
      ${c.id ? `<div class="kv"><b>Coordinator</b><span>${nm(c.id)}</span></div>` : ""}<div class="kv wide"><b>Read</b><span class="muted">${esc(c.note || "")}</span></div></div>
      <p><b>Purge:</b> ${esc(b.purge_effect)}.</p><p><b>Delete:</b> ${esc(b.delete_effect)}.</p>
      <p>To remove the barrier and all its queues: <code>${esc(b.teardown)}</code></p>`);
  }

  // ----------------------------------------------------------------- edit
  function fillEdit(d) {
    const a = d.attributes;
    for (const [k] of EDITABLE) $("#ed-" + k).value = a[k] ?? "";
    if ($("#ed-cbd")) $("#ed-cbd").checked = a.ContentBasedDeduplication === "true";
    $("#ed-enc").value = a.KmsMasterKeyId ? "kms" : a.SqsManagedSseEnabled === "true" ? "sqs" : "off";
    $("#ed-kms").value = a.KmsMasterKeyId || "";
    $("#ed-dlq").value = d.redrive_policy ? arnName(d.redrive_policy.deadLetterTargetArn) : "";
    $("#ed-mrc").value = d.redrive_policy ? d.redrive_policy.maxReceiveCount : "";
    $("#ed-allow").value = d.redrive_allow_policy ? d.redrive_allow_policy.redrivePermission : "";
    $("#ed-sources").value = d.redrive_allow_policy && d.redrive_allow_policy.sourceQueueArns ? d.redrive_allow_policy.sourceQueueArns.map(arnName).join(", ") : "";
    QP.form = formValues();
  }
  const formValues = () => Object.fromEntries([...document.querySelectorAll("#edit-form input, #edit-form select")]
    .map(el => [el.id, el.type === "checkbox" ? el.checked : el.value.trim()]));

  async function save(ev) {
    ev.preventDefault();
    const now = formValues(), was = QP.form, changed = k => now[k] !== was[k], out = {};
    for (const [k] of EDITABLE) if (changed("ed-" + k)) out[k] = num(now["ed-" + k]);
    if ("ed-cbd" in now && changed("ed-cbd")) out.ContentBasedDeduplication = now["ed-cbd"];
    if (changed("ed-enc") || changed("ed-kms")) {
      if (now["ed-enc"] === "kms") { out.KmsMasterKeyId = now["ed-kms"]; out.SqsManagedSseEnabled = false; }
      else { out.SqsManagedSseEnabled = now["ed-enc"] === "sqs"; if (was["ed-kms"]) out.KmsMasterKeyId = ""; }
    }
    if (changed("ed-dlq") || changed("ed-mrc"))
      out.RedrivePolicy = now["ed-dlq"] ? { deadLetterTargetArn: now["ed-dlq"], maxReceiveCount: num(now["ed-mrc"]) } : null;
    if (changed("ed-allow") || changed("ed-sources"))
      out.RedriveAllowPolicy = now["ed-allow"] ? { redrivePermission: now["ed-allow"],
        sourceQueueArns: now["ed-allow"] === "byQueue" ? now["ed-sources"].split(",").map(s => s.trim()).filter(Boolean) : null } : null;
    const result = $("#edit-result");
    if (!Object.keys(out).length) { say(result, "Nothing changed."); return; }
    say(result, "saving…");
    const j = await api("POST", qpath(QP.name) + "/attributes", { attributes: out });
    say(result, j.ok ? "Saved: " + j.changed.join(", ") : "Not saved: " + failure(j), j.ok);
    if (j.ok) details();
  }

  // ----------------------------------------------------------------- tags
  function tagTable(tags) {
    const keys = Object.keys(tags || {}).sort();
    morph($("#qp-tags"), keys.length ? `<table class="tags"><thead><tr><th>Key</th><th>Value</th>${READ_ONLY ? "" : "<th><span class=\"sr\">Remove</span></th>"}</tr></thead><tbody>` +
      keys.map(k => `<tr data-key="${esc(k)}" data-tag="${esc(k)}"><td><bdi>${esc(k)}</bdi></td><td><bdi>${esc(tags[k])}</bdi></td>` +
        (READ_ONLY ? "" : `<td><button type="button" class="untag" data-tag="${esc(k)}" aria-label="${esc("remove tag " + iso(k))}">Remove</button></td>`) + "</tr>").join("") +
      "</tbody></table>" : '<p class="muted">No tags.</p>');
  }
  async function addTag(ev) {
    ev.preventDefault();
    const key = $("#tag-key").value.trim(), value = $("#tag-value").value;
    if (!key) return;
    const j = await api("POST", qpath(QP.name) + "/tags", { tags: { [key]: value } });
    say($("#tag-result"), j.ok ? `Tag ${iso(key)} added.` : "Not added: " + failure(j), j.ok);
    // The table is updated from the answer: tagging actions count against
    // SQS's quota of 5 a second, so the tags are not read again.
    if (j.ok) { $("#tag-key").value = ""; $("#tag-value").value = ""; QP.d.tags[key] = value; tagTable(QP.d.tags); }
  }
  async function removeTag(ev) {
    const b = ev.target.closest("button.untag");
    if (!b) return;
    const key = b.dataset.tag;
    const j = await api("POST", qpath(QP.name) + "/tags/remove", { keys: [key] });
    say($("#tag-result"), j.ok ? `Tag ${iso(key)} removed.` : "Not removed: " + failure(j), j.ok);
    if (j.ok) { delete QP.d.tags[key]; tagTable(QP.d.tags); }
  }

  // ------------------------------------------------------------- messages
  let attrs = 0;
  function attrRow() {
    const i = ++attrs;
    $("#send-attrs").insertAdjacentHTML("beforeend", `<div class="attr inline">
      <label for="at-name-${i}">Name</label><input type="text" id="at-name-${i}" class="at-name">
      <label for="at-type-${i}">Type</label><select id="at-type-${i}" class="at-type"><option>String</option><option>Number</option><option value="Binary">Binary (base64)</option></select>
      <label for="at-value-${i}">Value</label><input type="text" id="at-value-${i}" class="at-value">
      <button type="button" class="drop" aria-label="remove this attribute">Remove</button></div>`);
  }
  async function send(ev) {
    ev.preventDefault();
    const body = { body: $("#send-body").value, attributes: {} };
    document.querySelectorAll("#send-attrs .attr").forEach(r => {
      const n = $(".at-name", r).value.trim();
      if (n) body.attributes[n] = { type: $(".at-type", r).value, value: $(".at-value", r).value };
    });
    if ($("#send-group")) { body.group_id = $("#send-group").value.trim(); body.deduplication_id = $("#send-dedup").value.trim(); }
    else if ($("#send-delay").value !== "") body.delay_seconds = num($("#send-delay").value);
    const out = $("#send-result");
    say(out, "sending…");
    const j = await api("POST", qpath(QP.name) + "/messages", body);
    say(out, j.ok ? `Sent: message ${j.message_id}.` : "Not sent: " + failure(j), j.ok);
    if (j.ok) { $("#send-body").value = ""; recount(QP.name); }
  }
  async function poll(ev) {
    ev.preventDefault();
    const secs = num($("#poll-secs").value) ?? 20, out = $("#poll-result");
    const button = $("button", ev.target);
    button.disabled = true;
    say(out, `Polling for up to ${secs} s…`);
    const j = await api("POST", qpath(QP.name) + "/messages/poll", { duration_secs: secs, max_count: num($("#poll-count").value) ?? 10 });
    button.disabled = false;
    if (!j.ok) { say(out, "Poll failed: " + failure(j), false); return; }
    QP.polled = j.messages;
    say(out, `${j.count} message(s) received. ${j.in_flight_note}`);
    messageTable();
    if (j.count) recount(QP.name);
  }
  function messageTable() {
    const ms = QP.polled;
    const attrText = m => Object.entries(m.message_attributes || {}).map(([k, v]) => `<div><bdi>${esc(k)}</bdi> = <bdi>${esc(v.value)}</bdi> <span class="muted">(${esc(v.type)})</span></div>`).join("") || '<span class="muted">none</span>';
    morph($("#poll-messages"), ms.length ? `<div class="tablewrap"><table class="messages"><thead><tr><th><span class="sr">Select</span></th><th>Body</th><th>Attributes</th><th class="num">Receive count</th><th>Sent</th><th>Message ID</th></tr></thead><tbody>` +
      ms.map(m => `<tr data-key="${esc(m.message_id)}" data-message="${esc(m.message_id)}"><td><input type="checkbox" class="pick-message" value="${esc(m.message_id)}" aria-label="${esc("select message " + m.message_id)}"></td>` +
        `<td class="body"><bdi>${esc(m.body)}</bdi></td><td class="mattrs">${attrText(m)}</td><td class="num receive-count">${m.receive_count ?? "–"}</td>` +
        `<td>${esc(date(m.sent_ms))}</td><td class="muted">${esc(m.message_id)}</td></tr>`).join("") +
      `</tbody></table></div><div class="buttons"><button type="button" id="delete-messages">Delete selected</button><span id="delete-result" role="status"></span></div>` : "");
    if (ms.length) $("#delete-messages").addEventListener("click", deleteSelected);
  }
  async function deleteSelected() {
    const ids = [...document.querySelectorAll("#poll-messages .pick-message:checked")].map(b => b.value);
    const out = $("#delete-result");
    if (!ids.length) { say(out, "Select the messages to delete first.", false); return; }
    const handles = QP.polled.filter(m => ids.includes(m.message_id)).map(m => m.receipt_handle);
    const j = await api("POST", qpath(QP.name) + "/messages/delete", { receipt_handles: handles });
    if (!j.ok) { say(out, "Not deleted: " + failure(j), false); return; }
    const failed = new Set(j.failed.map(f => f.receipt_handle));
    QP.polled = QP.polled.filter(m => !handles.includes(m.receipt_handle) || failed.has(m.receipt_handle));
    messageTable();
    say($("#poll-result"), `${j.deleted} message(s) deleted.` + (j.failed.length ? " Not deleted: " + j.failed.map(f => f.error).join("; ") : ""), !j.failed.length);
    if (j.deleted) recount(QP.name);
  }

  // -------------------------------------------------------------- redrive
  let following = null;
  async function tasks() {
    clearTimeout(following);
    const name = QP.name, j = await api("GET", qpath(name) + "/redrive");
    if (!QP || QP.name !== name || $("#queue-page").hidden) return;
    if (!j.ok) { morph($("#redrive-tasks"), `<p class="error">Cannot list the redrive tasks: ${esc(failure(j))}</p>`); return; }
    morph($("#redrive-tasks"), j.tasks.length ? `<div class="tablewrap"><table class="tasks"><thead><tr><th>Status</th><th class="num">Moved</th><th class="num">To move</th><th>Destination</th><th class="num">Rate</th><th>Started</th><th></th></tr></thead><tbody>` +
      j.tasks.map(t => `<tr data-key="${esc(t.task_handle || t.started_ms)}"><td class="status">${esc(t.status)}${t.failure_reason ? ` <span class="error">${esc(t.failure_reason)}</span>` : ""}</td><td class="num">${t.moved ?? "–"}</td><td class="num">${t.to_move ?? "–"}</td>` +
        `<td>${t.destination_arn ? nm(arnName(t.destination_arn)) : "the source queues"}</td><td class="num">${t.rate ?? "–"}</td><td>${esc(date(t.started_ms))}</td>` +
        `<td>${t.status === "RUNNING" && t.task_handle && !READ_ONLY ? `<button type="button" class="cancel-task" data-handle="${esc(t.task_handle)}">Cancel</button>` : ""}</td></tr>`).join("") + "</tbody></table></div>"
      : '<p class="muted">No redrive task.</p>');
    if (j.tasks.some(t => t.status === "RUNNING" || t.status === "CANCELLING")) following = setTimeout(tasks, 1500);
  }
  async function redrive(ev) {
    ev.preventDefault();
    const body = { destination: $("#redrive-dest").value.trim() || null, rate: num($("#redrive-rate").value) };
    const j = await api("POST", qpath(QP.name) + "/redrive", body);
    say($("#redrive-result"), j.ok ? "Redrive started." : "Not started: " + failure(j), j.ok);
    tasks();
  }
  async function cancelTask(ev) {
    const b = ev.target.closest("button.cancel-task");
    if (!b) return;
    b.disabled = true;
    const j = await api("POST", qpath(QP.name) + "/redrive/cancel", { task_handle: b.dataset.handle });
    say($("#redrive-result"), j.ok ? `Redrive cancelled, after ${j.moved ?? "?"} message(s) moved.` : "Not cancelled: " + failure(j), j.ok);
    tasks();
  }

  // --------------------------------------------------------------- create
  function openCreate() {
    const form = $("#create-form");
    say($("#create-result"), "");
    fifoFields();
    $("#cr-name").focus();
    if (!form.dataset.bound) {
      form.dataset.bound = "1";
      form.addEventListener("change", fifoFields);
      form.addEventListener("submit", create);
    }
  }
  function fifoFields() {
    const fifo = $("#cr-fifo").checked;
    $("#cr-cbd-field").hidden = !fifo;
    setText($("#cr-suffix"), fifo ? "A FIFO queue's name ends in .fifo (added if missing)." : "");
  }
  async function create(ev) {
    ev.preventDefault();
    const fifo = $("#cr-fifo").checked;
    let name = $("#cr-name").value.trim();
    if (fifo && !name.endsWith(".fifo")) name += ".fifo";
    const attributes = {};
    for (const [k] of EDITABLE) { const v = $("#cr-" + k).value; if (v !== "") attributes[k] = num(v); }
    if (fifo && $("#cr-cbd").checked) attributes.ContentBasedDeduplication = true;
    const enc = $("#cr-enc").value;
    if (enc === "sqs") attributes.SqsManagedSseEnabled = true;
    if (enc === "off") attributes.SqsManagedSseEnabled = false;
    if (enc === "kms") attributes.KmsMasterKeyId = $("#cr-kms").value.trim();
    const tags = {};
    for (const line of $("#cr-tags").value.split("\n")) {
      if (!line.trim()) continue;
      const at = line.indexOf("=");
      tags[(at < 0 ? line : line.slice(0, at)).trim()] = at < 0 ? "" : line.slice(at + 1).trim();
    }
    const body = { name, attributes, tags };
    const dlq = $("#cr-dlq").value.trim();
    if (dlq) body.dead_letter_queue = { queue: dlq, max_receive_count: num($("#cr-mrc").value) };
    say($("#create-result"), "creating…");
    const j = await api("POST", "/api/queues", body);
    if (!j.ok) { say($("#create-result"), "Not created: " + failure(j), false); return; }
    $("#create-form").reset();
    notice(`Created ${iso(name)}.`);
    location.hash = `#/queue/${encodeURIComponent(name)}`;
  }
  (() => {  // the create form's fields
    const ranges = EDITABLE.map(([a, label, hint]) => field("cr-" + a, label, `<input type="number" id="cr-${a}" min="0">`, hint + "; empty: SQS's default")).join("");
    $("#create-fields").innerHTML = ranges +
      `<div class="field" id="cr-cbd-field" hidden><label for="cr-cbd">Content-based deduplication</label><input type="checkbox" id="cr-cbd"></div>` +
      field("cr-enc", "Encryption", encryptionSelect("cr-enc", true)) + field("cr-kms", "KMS key (SSE-KMS)", '<input type="text" id="cr-kms" placeholder="alias/aws/sqs">') +
      field("cr-dlq", "Dead-letter queue", '<input type="text" id="cr-dlq">', "a queue name or ARN (of the same type); empty: none") +
      field("cr-mrc", "Maximum receives", '<input type="number" id="cr-mrc" min="1" max="1000" value="10">', "before a message moves to the dead-letter queue") +
      `<div class="field wide"><label for="cr-tags">Tags</label><textarea id="cr-tags" rows="3" placeholder="team=data"></textarea><span class="muted hint">one key=value a line</span></div>`;
  })();

  // --------------------------------------------------------------- routes
  function route() {
    const h = decodeURIComponent(location.hash.slice(1));
    const m = h.match(/^\/queue\/([^/]+)(?:\/(edit|messages))?$/);
    const create = h === "/create" && !READ_ONLY;
    $("#home").hidden = !!(m || create);
    $("#queue-page").hidden = !m;
    $("#create-page").hidden = !create;
    if (!m) { clearTimeout(following); QP = null; $("#queue-page").innerHTML = ""; }
    if (m) openQueue(m[1], m[2]);
    else if (create) openCreate();
    else if (T.started) load();
    window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);
  document.body.classList.toggle("read-only", READ_ONLY);
  $("#queue-actions").hidden = READ_ONLY;

  return {
    // Each read of /api/state: the live counts, the console's prefix; the
    // table's page is read again every 10 s while it is shown (and a
    // queue's counts after an action on it, see recount).
    state(state) {
      T.counts = new Map((state.queues || []).map(q => [q.name, q]));
      if (!state.error && state.now_ms && state.now_ms !== T.ends[T.ends.length - 1]) T.ends = [...T.ends, state.now_ms].slice(-2);
      T.prefix = state.prefix || "";
      if (!T.started) { T.started = true; route(); return; }
      if (!$("#home").hidden && Date.now() - T.fetched > 10000) load(); else draw();
    },
  };
})();
