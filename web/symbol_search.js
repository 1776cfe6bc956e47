// The "Add symbol" search box: an ARIA combobox whose listbox shows catalogue suggestions (GET /symbols?q=),
// debounced; arrows move, Enter adds, Escape closes. The state and its rules live in lib/suggest.js.

import { SEARCH_DEBOUNCE_MS, SuggestState, suggestions } from "./lib/suggest.js";

export class SymbolSearch {
  /**
   * `search(query)` resolves to listings, `alwaysOn()` gives the always-on listings, `onBoard()` the symbols shown,
   * `onChoose(symbol)` adds one. `hint` is where a refused symbol is explained.
   */
  constructor({ form, input, listbox, hint }, { search, alwaysOn, onBoard, onChoose }) {
    Object.assign(this, { form, input, listbox, hint, search, alwaysOn, onBoard, onChoose });
    this.state = new SuggestState();
    this.timer = null;
    input.addEventListener("input", () => this.typed());
    input.addEventListener("keydown", (event) => this.keydown(event));
    input.addEventListener("focus", () => this.showEmptyList(false));
    input.addEventListener("click", () => {
      this.state.open = true;
      this.showEmptyList(true);
    });
    input.addEventListener("blur", () => {
      this.state.close();
      this.render();
    });
    // pointerdown, not click: a click would first blur the input and close the list under the pointer
    listbox.addEventListener("pointerdown", (event) => {
      const option = event.target.closest("[role=option]");
      if (!option) return;
      event.preventDefault();
      this.choose(option.dataset.symbol);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.enter();
    });
  }

  typed() {
    this.showHint("");
    const query = this.state.input(this.input.value);
    clearTimeout(this.timer);
    if (query) this.timer = setTimeout(() => this.ask(query), SEARCH_DEBOUNCE_MS);
    else this.showEmptyList(true);
    this.render();
  }

  async ask(query) {
    let listings;
    try {
      listings = await this.search(query);
    } catch (error) {
      listings = [];
      this.showHint(`Search failed: ${error.message}`);
    }
    const chosen = this.state.results(query, suggestions(listings, this.onBoard(), query));
    this.render();
    if (chosen) this.choose(chosen);
  }

  showEmptyList(open) {
    if (this.state.query) return;
    this.state.setEmptyItems(suggestions(this.alwaysOn(), this.onBoard()));
    if (open) this.state.open = true;
    this.render();
  }

  keydown(event) {
    if (event.key === "Enter") return; // the form's submit handles it, so the Add button does the same
    if (event.key === "ArrowDown" || event.key === "ArrowUp") this.showEmptyList(false); // fresh after an add
    const { handled, choose } = this.state.key(event.key);
    if (handled) event.preventDefault();
    if (event.key === "Escape" && !handled && this.input.value) {
      this.input.value = ""; // a second Escape clears the box (the list is closed already)
      this.state.clear();
      event.preventDefault();
    }
    this.render();
    if (choose) this.choose(choose);
  }

  enter() {
    if (this.state.query && !this.state.current) {
      clearTimeout(this.timer);
      const query = this.state.query;
      this.state.key("Enter"); // waits for the answer, asked for now
      this.ask(query);
      return;
    }
    const { choose } = this.state.key("Enter");
    this.render();
    if (choose) this.choose(choose);
  }

  choose(symbol) {
    this.input.value = "";
    this.state.clear();
    this.render();
    this.onChoose(symbol);
  }

  /** Explain why a symbol was refused (or clear it with ""). */
  showHint(text) {
    this.hint.textContent = text;
    this.hint.hidden = !text;
  }

  render() {
    const { state, input, listbox } = this;
    const items = state.current ? state.items : [];
    const open = state.open && items.length > 0;
    listbox.replaceChildren(
      ...items.map((item, index) => {
        const option = document.createElement("li");
        option.id = `add-option-${index}`;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", String(index === state.active));
        option.dataset.symbol = item.symbol;
        const symbol = document.createElement("span");
        symbol.className = "option-symbol";
        symbol.textContent = item.symbol;
        const name = document.createElement("span");
        name.className = "option-name";
        name.textContent = item.onBoard ? `${item.name} · on the board` : item.name;
        option.append(symbol, name);
        return option;
      }),
    );
    listbox.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    const active = open ? listbox.children[state.active] : undefined;
    if (active) {
      input.setAttribute("aria-activedescendant", active.id);
      active.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }
}
