{#- Expectation: every element of the array column `column_name` lies in
    [min_value, max_value]. Returns the rows holding an element outside. -#}
{% test expect_array_values_to_be_between(model, column_name, min_value, max_value) %}

    select *
    from {{ model }}
    where exists (
        select 1
        from unnest({{ column_name }}) as element (value)
        where element.value < {{ min_value }} or element.value > {{ max_value }}
    )

{% endtest %}
