// Calls per day, contained and transferred: drawn with the vendored Chart.js (no CDN).
const days = JSON.parse(document.getElementById("day-data").textContent);
new Chart(document.getElementById("days"), {
  type: "bar",
  data: {
    labels: days.map((d) => d.day),
    datasets: [
      { label: "calls", data: days.map((d) => d.calls), backgroundColor: "#1d4ed8" },
      { label: "contained", data: days.map((d) => d.contained), backgroundColor: "#15803d" },
      { label: "transferred", data: days.map((d) => d.transferred), backgroundColor: "#b45309" },
    ],
  },
  options: { animation: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
});
