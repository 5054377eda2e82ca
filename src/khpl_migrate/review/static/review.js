// Aadhaar copies are blurred until clicked (or focused and Enter/Space pressed);
// doing it again blurs them again. A file of its own, not inline: the page's
// Content-Security-Policy allows no inline script.
function toggle(image) {
  image.classList.toggle("revealed");
  image.setAttribute("aria-pressed", image.classList.contains("revealed") ? "true" : "false");
}

document.addEventListener("click", (event) => {
  const image = event.target.closest(".sensitive img");
  if (image) {
    toggle(image);
  }
});

document.addEventListener("keydown", (event) => {
  const image = event.target.closest && event.target.closest(".sensitive img");
  if (image && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    toggle(image);
  }
});
