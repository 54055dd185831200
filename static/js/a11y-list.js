// The seat list: the keyboard and screen-reader way to choose seats. Section, then row,
// then seats as labelled checkboxes. It shares state with the canvas (the page's model):
// ticking a box selects the seat on the map and the reverse.
//
// Only the open row has checkboxes in the DOM (a 500-seat row at most), so live updates
// touch a handful of nodes, and a box is updated in place so keyboard focus never jumps.

import { money } from "./api.js";

const STATUS_WORD = ["free", "held", "sold"];

export class SeatList {
  /**
   * @param {{section:HTMLSelectElement, row:HTMLSelectElement, seats:HTMLFieldSetElement, legend:HTMLElement}} els
   * @param {object} model  the page model: seats, status(i), priceOf(i), isSelected(i), isMine(i), toggle(i)
   */
  constructor(els, model) {
    this.els = els;
    this.model = model;
    this.rows = new Map(); // section -> Map(row -> [seat idx])
    this.boxes = new Map(); // seat idx -> checkbox, for the open row
    els.section.addEventListener("change", () => this.fillRows());
    els.row.addEventListener("change", () => this.fillSeats());
  }

  setSeats(seats) {
    this.rows.clear();
    seats.forEach((s, i) => {
      let bySection = this.rows.get(s.section);
      if (!bySection) this.rows.set(s.section, (bySection = new Map()));
      let row = bySection.get(s.row);
      if (!row) bySection.set(s.row, (row = []));
      row.push(i);
    });
    const { section } = this.els;
    section.replaceChildren(...[...this.rows.keys()].map((name) => new Option(name, name)));
    this.fillRows();
  }

  fillRows() {
    const bySection = this.rows.get(this.els.section.value);
    const options = [...(bySection?.entries() ?? [])].map(([row, idxs]) => {
      const free = idxs.filter((i) => this.model.status(i) === 0).length;
      const o = new Option(`Row ${row} (${free} of ${idxs.length} free)`, row);
      return o;
    });
    this.els.row.replaceChildren(...options);
    this.fillSeats();
  }

  fillSeats() {
    const section = this.els.section.value;
    const row = this.els.row.value;
    const idxs = this.rows.get(section)?.get(row) ?? [];
    this.els.legend.textContent = `Seats in ${section}, row ${row}`;
    this.boxes.clear();
    const items = idxs.map((i) => {
      const seat = this.model.seats[i];
      const id = `seat-${seat.id}`;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = id;
      box.value = String(i);
      box.addEventListener("change", () => this.model.toggle(i, box.checked));
      const label = document.createElement("label");
      label.htmlFor = id;
      const wrap = document.createElement("li");
      wrap.append(box, label);
      this.boxes.set(i, { box, label });
      this.update(i);
      return wrap;
    });
    const list = document.createElement("ul");
    list.className = "seat-boxes";
    list.append(...items);
    this.els.seats.querySelector("ul")?.remove();
    this.els.seats.append(list);
  }

  /** Refresh the boxes of these seats if their row is open (all open boxes by default). */
  refresh(indices) {
    const targets = indices ?? this.boxes.keys();
    for (const i of targets) if (this.boxes.has(i)) this.update(i);
  }

  /** Refresh row counts without rebuilding (keeps the user's place in the list). */
  refreshRows() {
    const bySection = this.rows.get(this.els.section.value);
    if (!bySection) return;
    for (const option of this.els.row.options) {
      const idxs = bySection.get(option.value) ?? [];
      const free = idxs.filter((i) => this.model.status(i) === 0).length;
      option.textContent = `Row ${option.value} (${free} of ${idxs.length} free)`;
    }
  }

  update(i) {
    const { box, label } = this.boxes.get(i);
    const seat = this.model.seats[i];
    const mine = this.model.isMine(i);
    const status = this.model.status(i);
    const parts = [`Seat ${seat.number}`, money(this.model.priceOf(i))];
    if (seat.accessible) parts.push("wheelchair accessible");
    if (mine) parts.push("held by you");
    else if (status !== 0) parts.push(STATUS_WORD[status]);
    label.textContent = parts.join(", ");
    box.checked = mine || this.model.isSelected(i);
    box.disabled = mine || status !== 0;
  }
}
