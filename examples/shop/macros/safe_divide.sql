{#- numerator / denominator, null instead of a division-by-zero error when the
    denominator is 0 -#}
{% macro safe_divide(numerator, denominator) -%}
    ({{ numerator }}) / nullif({{ denominator }}, 0)
{%- endmacro %}
